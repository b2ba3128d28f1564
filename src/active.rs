//! The OpenTelemetry contexts that entered spans made active on this
//! thread, innermost last, so that each exit restores what its entry found.
//!
//! An unsampled span entered where an unsampled context of its own trace is
//! active already (its parent's, as a rule) activates none of its own: the
//! trace id and the sampling decision OpenTelemetry reads are the same, and
//! no context is built, attached and freed for it. Such entries are kept
//! apart from the guards, with the number of guards below them, so that the
//! guards' stack keeps the layout of the common case (an `Option` around
//! each guard made every enter and exit about 12 ns slower).

use std::cell::RefCell;

use opentelemetry::trace::{SpanContext, TraceContextExt, TraceId};
use opentelemetry::{Context as OtelContext, ContextGuard};

/// Entries by span id (the registry's).
struct Active {
    /// Contexts attached, innermost last.
    guards: Vec<(u64, ContextGuard)>,
    /// Entries that attached nothing, with `guards.len()` at the time.
    skipped: Vec<(u64, usize)>,
}

thread_local! {
    static ACTIVE: RefCell<Active> = const {
        RefCell::new(Active { guards: Vec::new(), skipped: Vec::new() })
    };
}

/// Whether the active OpenTelemetry context holds an unsampled span of
/// trace `trace_id`.
#[inline]
pub(crate) fn unsampled_trace_active(trace_id: TraceId) -> bool {
    OtelContext::map_current(|cx| {
        cx.has_active_span() && {
            let span = cx.span();
            let sc = span.span_context();
            sc.trace_id() == trace_id && !sc.is_sampled()
        }
    })
}

/// Records the entry of span `key`: `Some` with the context it attached,
/// `None` when it attached none.
#[inline]
pub(crate) fn push(key: u64, guard: Option<ContextGuard>) {
    let _ = ACTIVE.try_with(|a| {
        let Ok(mut a) = a.try_borrow_mut() else {
            return;
        };
        match guard {
            Some(guard) => a.guards.push((key, guard)),
            None => {
                let depth = a.guards.len();
                a.skipped.push((key, depth));
            }
        }
    });
}

/// Ends the innermost entry of span `key`; returns its guard, to be dropped
/// by the caller (dropping it restores the context the entry found).
#[inline]
pub(crate) fn pop(key: u64) -> Option<ContextGuard> {
    ACTIVE
        .try_with(|a| {
            let mut a = a.try_borrow_mut().ok()?;
            let a = &mut *a;
            if let Some(&(k, depth)) = a.skipped.last() {
                if k == key && depth == a.guards.len() {
                    a.skipped.pop();
                    return None;
                }
            }
            // The innermost as a rule; spans may also exit out of order.
            if a.guards.last().is_some_and(|(k, _)| *k == key) {
                return a.guards.pop().map(|(_, guard)| guard);
            }
            if let Some(pos) = a.guards.iter().rposition(|(k, _)| *k == key) {
                return Some(a.guards.remove(pos).1);
            }
            if let Some(pos) = a.skipped.iter().rposition(|(k, _)| *k == key) {
                a.skipped.remove(pos);
            }
            None
        })
        .ok()
        .flatten()
}

/// Replaces the context activated for span `key` on this thread, if it is
/// entered here, with one holding `sc` (after its parent changed). An entry
/// that attached nothing attaches it now.
pub(crate) fn reactivate(key: u64, sc: SpanContext) {
    let _ = ACTIVE.try_with(|a| {
        let Ok(mut a) = a.try_borrow_mut() else {
            return;
        };
        let a = &mut *a;
        let guard_at = a.guards.iter().rposition(|(k, _)| *k == key);
        let skipped_at = a.skipped.iter().rposition(|(k, _)| *k == key);
        let attach =
            || OtelContext::map_current(|current| current.with_remote_span_context(sc)).attach();
        match (guard_at, skipped_at) {
            // The innermost entry is one that attached nothing: it gets a
            // guard at its place, and the entries above count one more.
            (g, Some(s)) if g.is_none_or(|g| g < a.skipped[s].1) => {
                let (_, depth) = a.skipped.remove(s);
                a.guards.insert(depth, (key, attach()));
                for later in &mut a.skipped[s..] {
                    later.1 += 1;
                }
            }
            (Some(g), _) => {
                let old = std::mem::replace(&mut a.guards[g].1, attach());
                drop(old);
            }
            _ => {}
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceState};

    fn sc(trace: u128, span: u64, sampled: bool) -> SpanContext {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            flags,
            false,
            TraceState::default(),
        )
    }

    fn enter(key: u64, sc: SpanContext) {
        let cx = OtelContext::current().with_remote_span_context(sc);
        push(key, Some(cx.attach()));
    }

    fn assert_nothing_entered() {
        ACTIVE.with(|a| {
            let a = a.borrow();
            assert!(a.guards.is_empty() && a.skipped.is_empty());
        });
        assert_eq!(current_span_id(), SpanId::INVALID);
    }

    fn current_span_id() -> SpanId {
        OtelContext::map_current(|cx| cx.span().span_context().span_id())
    }

    #[test]
    fn entries_that_attached_nothing_keep_the_order() {
        enter(1, sc(7, 1, false));
        assert!(unsampled_trace_active(TraceId::from(7)));
        assert!(!unsampled_trace_active(TraceId::from(8)));
        // A child that attaches nothing, entered again inside itself.
        push(2, None);
        push(2, None);
        // A span with a context of its own inside it, then the child again.
        enter(3, sc(7, 3, false));
        push(2, None);
        drop(pop(2));
        assert_eq!(current_span_id(), SpanId::from(3));
        drop(pop(3));
        assert_eq!(current_span_id(), SpanId::from(1));
        drop(pop(2));
        drop(pop(2));
        assert_eq!(current_span_id(), SpanId::from(1));
        drop(pop(1));
        assert_nothing_entered();
    }

    #[test]
    fn reactivating_an_entry_that_attached_nothing_attaches_in_place() {
        enter(1, sc(7, 1, false));
        push(2, None);
        enter(3, sc(7, 3, false));
        push(4, None);
        // Span 2 gets a sampled parent while 3 and 4 are entered inside it.
        reactivate(2, sc(9, 2, true));
        assert!(OtelContext::map_current(|cx| cx
            .span()
            .span_context()
            .is_sampled()));
        drop(pop(4));
        drop(pop(3));
        // Span 2's context stays active until its own exit.
        assert_eq!(current_span_id(), SpanId::from(2));
        drop(pop(2));
        assert_eq!(current_span_id(), SpanId::from(1));
        drop(pop(1));
        assert_nothing_entered();
    }

    #[test]
    fn exits_out_of_order_leave_nothing_behind() {
        enter(1, sc(7, 1, false));
        push(2, None);
        enter(3, sc(7, 3, false));
        // 2 exits before 3, then 1 before 3.
        drop(pop(2));
        drop(pop(1));
        drop(pop(3));
        assert_nothing_entered();
    }
}
