//! Latency histograms and medians.

/// Sub-buckets per power of two: values are kept within 1/32 (about 3%).
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values past 2^36 µs (about 19 hours) land in the last bucket.
const MAX_EXP: u32 = 36;
const BUCKETS: usize = (SUB + (MAX_EXP - SUB_BITS + 1) as u64 * SUB) as usize;

/// A log-linear histogram of microsecond latencies: cheap to record into, mergeable.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u32>,
    total: u64,
    /// The sum of the recorded values, exact, for the mean.
    sum: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
        }
    }
}

fn bucket(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let exp = (63 - value.leading_zeros()).min(MAX_EXP);
    let value = value.min((1 << (MAX_EXP + 1)) - 1);
    let sub = (value >> (exp - SUB_BITS)) - SUB;
    (SUB + u64::from(exp - SUB_BITS) * SUB + sub) as usize
}

/// The middle of the values bucket `index` holds.
fn bucket_value(index: usize) -> f64 {
    let index = index as u64;
    if index < SUB {
        return index as f64;
    }
    let exp = (index - SUB) / SUB + u64::from(SUB_BITS);
    let sub = (index - SUB) % SUB;
    let width = 1u64 << (exp - u64::from(SUB_BITS));
    let low = (SUB + sub) * width;
    low as f64 + (width as f64 - 1.0) / 2.0
}

impl Histogram {
    /// Records one latency in microseconds.
    pub(crate) fn record(&mut self, micros: u64) {
        let slot = &mut self.counts[bucket(micros)];
        *slot = slot.saturating_add(1);
        self.total += 1;
        self.sum = self.sum.saturating_add(micros);
    }

    /// Adds another histogram's values to this one.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// Forgets every value.
    pub(crate) fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
        self.sum = 0;
    }

    /// How many values were recorded.
    pub(crate) fn len(&self) -> u64 {
        self.total
    }

    /// The mean of the values, in milliseconds (exact, not from the buckets); 0 when empty.
    pub(crate) fn mean_ms(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.sum as f64 / self.total as f64 / 1000.0
    }

    /// The value at quantile `q` (0..=1), in milliseconds; 0 when empty.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                return bucket_value(index) / 1000.0;
            }
        }
        bucket_value(BUCKETS - 1) / 1000.0
    }
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_precise() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 30, 1 << 36, u64::MAX]) {
            let b = bucket(v);
            assert!(b >= last && b < BUCKETS, "value {v} bucket {b}");
            last = b;
            if v > 0 && v < 1 << 36 {
                let mid = bucket_value(b);
                assert!(
                    (mid - v as f64).abs() / v as f64 <= 1.0 / 32.0,
                    "{v} -> {mid}"
                );
            }
        }
    }

    #[test]
    fn quantiles_and_medians() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v * 1000);
        }
        assert!((h.quantile_ms(0.5) - 500.0).abs() < 16.0);
        assert!((h.quantile_ms(0.99) - 990.0).abs() < 32.0);
        assert!((h.mean_ms() - 500.5).abs() < 1e-9);
        let mut other = Histogram::default();
        other.record(2_000_000);
        h.merge(&other);
        assert!((h.mean_ms() - (500_500.0 + 2000.0) / 1001.0).abs() < 1e-9);
        h.clear();
        assert_eq!(h.mean_ms(), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
