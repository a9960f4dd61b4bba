//! The hooks without the `metrics` feature: zero-sized, every call compiles to nothing.
//!
//! They keep the signatures of `on.rs`, `&self` included, and are `Clone` but not `Copy`, so
//! that the callers read the same with the feature on or off.
#![allow(clippy::unused_self)]

use super::{AckOutcome, Disconnect, HubTransport, Limit, Refusal, Target, Transport};

#[derive(Debug, Clone, Default)]
pub(crate) struct Meters;

impl Meters {
    pub(crate) fn new() -> Self {
        Meters
    }

    #[inline(always)]
    pub(crate) fn namespace(&self, _path: &str) -> NsMeters {
        NsMeters
    }

    #[inline(always)]
    pub(crate) fn of_path(&self, _path: &str) -> NsMeters {
        NsMeters
    }

    #[inline(always)]
    pub(crate) fn hub_published(&self, _transport: HubTransport) {}

    #[inline(always)]
    pub(crate) fn handshake_refused(&self, _reason: Refusal) {}
}

#[derive(Debug, Clone)]
pub(crate) struct NsMeters;

impl NsMeters {
    #[inline(always)]
    pub(crate) fn connected(&self, _transport: Transport) {}

    #[inline(always)]
    pub(crate) fn disconnected(&self, _transport: Transport, _reason: Disconnect) {}

    #[inline(always)]
    pub(crate) fn refused(&self, _reason: Refusal) {}

    #[inline(always)]
    pub(crate) fn limit_hit(&self, _limit: Limit) {}

    #[inline(always)]
    pub(crate) fn received(&self) {}

    #[inline(always)]
    pub(crate) fn queued(&self) {}

    #[inline(always)]
    pub(crate) fn dequeued(&self) {}

    #[inline(always)]
    pub(crate) fn emitted(&self, _target: Target) {}

    #[inline(always)]
    pub(crate) fn ack_answered(&self, _ok: bool) {}

    #[inline(always)]
    pub(crate) fn ack_ended(&self, _outcome: AckOutcome) {}

    #[inline(always)]
    pub(crate) fn ack_wait(&self) -> AckWait {
        AckWait
    }

    #[inline(always)]
    pub(crate) fn handling(&self) -> HandlerTimer {
        HandlerTimer
    }
}

#[derive(Debug)]
pub(crate) struct AckWait;

impl AckWait {
    #[inline(always)]
    pub(crate) fn ended(self, _outcome: AckOutcome) {}
}

#[derive(Debug)]
pub(crate) struct HandlerTimer;
