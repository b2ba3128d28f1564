//! The layer's own table of span states, keyed by span id.
//!
//! Kept beside the registry rather than in its extensions: reaching a
//! span's state costs one hash and one uncontended lock, instead of a slab
//! lookup, a reference count, a per-span lock and a type-keyed map, and
//! storing it allocates nothing in steady state (the extensions box every
//! value).
//!
//! The table is split into shards, each behind its own lock, so threads
//! working on different spans rarely meet. A lock is held only while the
//! layer copies a span's values; if that copying re-enters the layer on the
//! same thread (a `Debug` implementation that logs, say) and needs the same
//! shard, the nested call is skipped instead of deadlocking.
//!
//! The shard lock is the table's own ([`ShardLock`]): taken with one
//! compare-and-swap and released with a plain store. `std::sync::Mutex`
//! releases with an atomic swap (to learn whether a waiter must be woken),
//! and on x86 every such locked instruction also waits for the thread's
//! pending stores, which after copying a span's values into a record are
//! often still on their way from the other core's cache. A sampled span
//! takes a shard lock five times; releasing with a store made the LLM-call
//! span about 3% cheaper in caller time, an unsampled one about 7%, and an
//! enter and exit 5–10% (`benches/README.md`).

use std::cell::{Cell, UnsafeCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_core::span::Id;

use crate::layer::SpanState;

/// Number of shards: a power of two no larger than 64 (one bit each in
/// [`HELD`]).
const SHARDS: usize = 64;

/// Span states by span id.
pub(crate) struct Spans {
    shards: Box<[Shard]>,
}

/// One shard, on its own cache line so that neighbouring locks do not
/// contend.
#[repr(align(64))]
#[derive(Default)]
struct Shard(ShardLock<Map>);

type Map = HashMap<u64, SpanState, BuildHasherDefault<IdHasher>>;

/// Checks a waiting thread spends spinning before it starts yielding its
/// time slice to the holder.
const SPINS: u32 = 64;
/// Yields before a waiting thread sleeps between checks instead: a yield
/// does not let a holder of lower real-time priority run, a sleep does.
const YIELDS: u32 = 16;
/// The sleep between checks after that.
const NAP: std::time::Duration = std::time::Duration::from_micros(50);

/// A lock for a shard's map: a flag taken with one compare-and-swap and
/// released with a plain store. Its holder only runs map operations or
/// copies one call's field values, so a thread that finds it taken spins
/// briefly, then yields, then sleeps briefly between checks until it is
/// free. There is no poisoning: a panic while it is held releases it, and
/// the map stays consistent.
struct ShardLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a `ShardGuard`, and the flag
// lets one guard exist at a time (acquired with `Acquire`, released with
// `Release`, so each holder sees the previous holder's writes); the value
// moves between threads that way, hence `T: Send`.
unsafe impl<T: Send> Sync for ShardLock<T> {}

impl<T: Default> Default for ShardLock<T> {
    fn default() -> Self {
        ShardLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(T::default()),
        }
    }
}

impl<T> ShardLock<T> {
    #[inline]
    fn lock(&self) -> ShardGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        ShardGuard { lock: self }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut checks = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if checks < SPINS {
                    std::hint::spin_loop();
                } else if checks < SPINS + YIELDS {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(NAP);
                }
                checks = checks.saturating_add(1);
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

/// The held lock of a shard; released when dropped (unwinding included).
struct ShardGuard<'a, T> {
    lock: &'a ShardLock<T>,
}

impl<T> std::ops::Deref for ShardGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see `ShardLock`).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> std::ops::DerefMut for ShardGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only one (see `ShardLock`), and it is
        // borrowed mutably.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for ShardGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

thread_local! {
    /// The shards whose lock this thread holds, one bit each.
    static HELD: Cell<u64> = const { Cell::new(0) };
}

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spans").finish_non_exhaustive()
    }
}

impl Default for Spans {
    fn default() -> Self {
        Spans {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

/// Mixes a span id: registry ids differ mostly in their low bits.
#[inline]
fn mix(id: u64) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[inline]
fn shard_of(id: u64) -> usize {
    // High bits of the product: the best mixed. The map inside uses the low
    // bits (bucket) and the top seven (tag) of the rotated value.
    (mix(id) >> 40) as usize & (SHARDS - 1)
}

/// A shard's lock, held by this thread until dropped.
struct Held<'a> {
    map: ShardGuard<'a, Map>,
    bit: u64,
}

impl Drop for Held<'_> {
    #[inline]
    fn drop(&mut self) {
        let bit = self.bit;
        HELD.with(|h| h.set(h.get() & !bit));
    }
}

impl Spans {
    /// Locks the shard of `id`; `None` if this thread already holds it.
    #[inline]
    fn lock(&self, id: u64) -> Option<Held<'_>> {
        let shard = shard_of(id);
        let bit = 1u64 << shard;
        let held = HELD.try_with(|h| h.get()).ok()?;
        if held & bit != 0 {
            return None;
        }
        let map = self.shards[shard].0.lock();
        HELD.with(|h| h.set(held | bit));
        Some(Held { map, bit })
    }

    /// Stores the state of a new span.
    #[inline(always)]
    pub(crate) fn insert(&self, id: &Id, state: SpanState) {
        let key = id.into_u64();
        let old = match self.lock(key) {
            Some(mut held) => held.map.insert(key, state),
            None => Some(state),
        };
        // Dropped outside the lock.
        drop(old);
    }

    /// Runs `f` on the state of span `id`, if it has one.
    #[inline]
    pub(crate) fn with<R>(&self, id: &Id, f: impl FnOnce(&mut SpanState) -> R) -> Option<R> {
        let key = id.into_u64();
        let mut held = self.lock(key)?;
        held.map.get_mut(&key).map(f)
    }

    /// Takes the state of a closed span.
    #[inline]
    pub(crate) fn remove(&self, id: &Id) -> Option<SpanState> {
        let key = id.into_u64();
        self.lock(key)?.map.remove(&key)
    }

    /// Number of spans with state (open spans the layer tracks).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().len()).sum()
    }
}

/// Hashes a span id (the only key the table has) with one multiplication.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used for `u64` keys; kept correct for any other use.
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, id: u64) {
        // Rotated so that the bits choosing the shard are not the ones the
        // map uses for its tags.
        self.0 = mix(id).rotate_left(20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::SpanCx;
    use opentelemetry::trace::{SpanId, TraceId, TraceState};

    fn state(n: u64) -> SpanState {
        SpanState::Unsampled(SpanCx {
            trace_id: TraceId::from(u128::from(n) + 1),
            span_id: SpanId::from(n + 1),
            parent_id: SpanId::INVALID,
            parent_remote: false,
            sampled: false,
            trace_state: TraceState::default(),
            active: None,
            entered: false,
        })
    }

    #[test]
    fn insert_find_remove() {
        let spans = Spans::default();
        for n in 1..=10_000u64 {
            spans.insert(&Id::from_u64(n), state(n));
        }
        assert_eq!(spans.len(), 10_000);
        for n in (1..=10_000u64).step_by(7) {
            let found = spans.with(&Id::from_u64(n), |s| s.cx().span_id);
            assert_eq!(found, Some(SpanId::from(n + 1)));
        }
        assert!(spans.with(&Id::from_u64(10_001), |_| ()).is_none());
        for n in 1..=10_000u64 {
            assert!(spans.remove(&Id::from_u64(n)).is_some());
        }
        assert_eq!(spans.len(), 0);
    }

    #[test]
    fn reentry_on_the_same_shard_is_skipped_not_deadlocked() {
        let spans = Spans::default();
        let a = Id::from_u64(1);
        // Another id in the same shard as `a`, and one in a different shard.
        let same = (2..)
            .map(Id::from_u64)
            .find(|id| shard_of(id.into_u64()) == shard_of(1))
            .unwrap();
        let other = (2..)
            .map(Id::from_u64)
            .find(|id| shard_of(id.into_u64()) != shard_of(1))
            .unwrap();
        spans.insert(&a, state(1));
        spans.insert(&same, state(2));
        spans.insert(&other, state(3));
        let nested = spans.with(&a, |_| {
            (
                spans.with(&same, |_| ()).is_some(),
                spans.with(&other, |_| ()).is_some(),
            )
        });
        assert_eq!(nested, Some((false, true)));
        // The lock and the held bit are released afterwards.
        assert!(spans.with(&same, |_| ()).is_some());
    }

    #[test]
    fn the_shard_lock_excludes_under_contention() {
        // Each thread reads, waits, then writes back: any two holders at
        // once would lose an increment. Four threads on any number of
        // cores also exercise the spinning and the yielding waits.
        let lock = std::sync::Arc::new(ShardLock::<u64>::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let mut n = lock.lock();
                        let seen = *n;
                        for _ in 0..8 {
                            std::hint::spin_loop();
                        }
                        *n = seen + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 80_000);
    }

    #[test]
    fn a_waiter_gets_the_lock_after_a_long_hold() {
        // Held for 20 ms: the waiter goes through spinning, yielding and
        // sleeping, then takes the lock and sees the holder's write.
        let lock = std::sync::Arc::new(ShardLock::<u64>::default());
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let holder = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                let mut v = lock.lock();
                held_tx.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(20));
                *v = 1;
            })
        };
        held_rx.recv().unwrap();
        let started = std::time::Instant::now();
        let seen = *lock.lock();
        assert_eq!(seen, 1);
        assert!(started.elapsed() >= std::time::Duration::from_millis(10));
        holder.join().unwrap();
    }

    #[test]
    fn a_panic_inside_leaves_the_table_usable() {
        let spans = Spans::default();
        let a = Id::from_u64(5);
        spans.insert(&a, state(5));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            spans.with(&a, |_| panic!("inside"));
        }));
        assert!(r.is_err());
        assert!(spans.with(&a, |_| ()).is_some());
        assert!(spans.remove(&a).is_some());
    }
}
