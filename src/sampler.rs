//! Head sampling and id generation.
//!
//! The layer decides sampling itself, with the same algorithms as the
//! OpenTelemetry SDK's standard samplers, because building an OTel `Context`
//! per span just to ask the SDK would cost more than the rest of the span.

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};

/// A head sampler, decided once when a span is created.
///
/// These are the standard OpenTelemetry samplers, selectable with
/// `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` or
/// [`Pipeline::with_sampler`](crate::Pipeline::with_sampler).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Record every span.
    AlwaysOn,
    /// Record no span.
    AlwaysOff,
    /// Record a fraction of traces, chosen by trace id so every service that
    /// uses the same ratio keeps the same traces. The ratio is clamped to `0.0..=1.0`.
    TraceIdRatio(f64),
    /// Follow the parent's decision (local or remote); use the inner sampler
    /// for root spans.
    ParentBased(Box<Sampler>),
}

impl Default for Sampler {
    /// `ParentBased(AlwaysOn)`, the OpenTelemetry default.
    fn default() -> Self {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    }
}

impl Sampler {
    /// Decides for a span of `trace_id` whose parent, if any, was `parent_sampled`.
    pub(crate) fn should_sample(&self, parent_sampled: Option<bool>, trace_id: TraceId) -> bool {
        match self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::TraceIdRatio(ratio) => ratio_sampled(*ratio, trace_id),
            Sampler::ParentBased(root) => match parent_sampled {
                Some(sampled) => sampled,
                None => root.should_sample(None, trace_id),
            },
        }
    }

    /// The equivalent SDK sampler, for spans made through the OpenTelemetry API.
    pub(crate) fn to_sdk(&self) -> opentelemetry_sdk::trace::Sampler {
        use opentelemetry_sdk::trace::Sampler as Sdk;
        match self {
            Sampler::AlwaysOn => Sdk::AlwaysOn,
            Sampler::AlwaysOff => Sdk::AlwaysOff,
            Sampler::TraceIdRatio(r) => Sdk::TraceIdRatioBased(*r),
            Sampler::ParentBased(root) => Sdk::ParentBased(Box::new(root.to_sdk())),
        }
    }
}

/// The OpenTelemetry `TraceIdRatioBased` rule: compare the low 63 bits of the
/// trace id's last 8 bytes with the ratio scaled to `2^63`.
fn ratio_sampled(ratio: f64, trace_id: TraceId) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    let bytes = trace_id.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..16]);
    (u64::from_be_bytes(low) >> 1) < bound
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    use std::hash::BuildHasher;
    // RandomState is keyed from the OS and its keys change with every call,
    // so each thread starts its own sequence.
    std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id()) | 1
}

/// splitmix64: fast, well distributed, and never returns the same value twice
/// in a row for one thread, which is all span ids need.
#[inline]
fn next_u64() -> u64 {
    RNG.with(|state| {
        let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

#[inline]
pub(crate) fn new_span_id() -> SpanId {
    loop {
        let v = next_u64();
        if v != 0 {
            return SpanId::from(v);
        }
    }
}

#[inline]
pub(crate) fn new_trace_id() -> TraceId {
    loop {
        let v = ((next_u64() as u128) << 64) | next_u64() as u128;
        if v != 0 {
            return TraceId::from(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_bounds() {
        let ids: Vec<TraceId> = (0..2000).map(|_| new_trace_id()).collect();
        let kept = |r: f64| ids.iter().filter(|t| ratio_sampled(r, **t)).count();
        assert_eq!(kept(0.0), 0);
        assert_eq!(kept(1.0), 2000);
        let half = kept(0.5);
        assert!((800..1200).contains(&half), "ratio 0.5 kept {half} of 2000");
    }

    #[test]
    fn parent_based_follows_parent() {
        let s = Sampler::ParentBased(Box::new(Sampler::AlwaysOff));
        let t = new_trace_id();
        assert!(s.should_sample(Some(true), t));
        assert!(!s.should_sample(Some(false), t));
        assert!(!s.should_sample(None, t));
    }

    #[test]
    fn ids_are_distinct_and_valid() {
        let a = new_span_id();
        let b = new_span_id();
        assert_ne!(a, b);
        assert_ne!(a, SpanId::INVALID);
        assert_ne!(new_trace_id(), TraceId::INVALID);
    }
}
