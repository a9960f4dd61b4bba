//! Lock helpers shared by every module.

use std::sync::{Mutex, MutexGuard};

/// Takes `mutex` even when a panicking thread poisoned it: tongxun's locks guard maps and
/// counters that every critical section leaves consistent, so the data is still good.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
