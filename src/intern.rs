//! Short, low-cardinality strings kept for the life of the process: values
//! (provider, model, tool and agent names, finish reasons) and span names.
//! Each distinct one is allocated once, process-wide, up to a bound, and
//! handed out as a `&'static str`: a value seen before costs one or two
//! comparisons, and neither an allocation where it is decoded nor a free or
//! a reference-count update where the span is dropped.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, OnceLock};

use opentelemetry::StringValue;

/// Longer values are not kept: they are rarely repeated names.
const MAX_LEN: usize = 64;
/// Distinct values kept for the life of the process (at most about 256 KiB
/// of text); beyond, new values are simply copied.
const MAX_VALUES: usize = 4096;

/// FxHash: fast for short keys, and the tables never see untrusted volume
/// (they stop growing at their bound).
#[derive(Default)]
pub(crate) struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
}

/// The first of the two slots (of 64) for `text`, chosen by its length and
/// end bytes; `salt` tells apart uses of one table.
fn recent_pair(text: &[u8], salt: usize) -> usize {
    let (first, last) = match text {
        [] => (0, 0),
        [f, .., l] => (*f, *l),
        [only] => (*only, *only),
    };
    let h = ((text.len() as u32) ^ ((salt as u32) << 16)).wrapping_mul(0x9E37_79B9)
        ^ u32::from(first).wrapping_mul(0x85EB_CA6B)
        ^ u32::from(last).wrapping_mul(0xC2B2_AE35);
    (h.wrapping_mul(0x27D4_EB2F) >> 27) as usize * 2
}

/// A set of strings kept for the life of the process.
type Kept = Mutex<HashMap<&'static str, (), BuildHasherDefault<Fx>>>;

/// The kept copy of `s`, made if the table has room: `None` once it holds
/// `max` strings.
fn keep(table: &'static OnceLock<Kept>, max: usize, s: &str) -> Option<&'static str> {
    let mut kept = table.get_or_init(Default::default).lock().ok()?;
    if let Some((k, ())) = kept.get_key_value(s) {
        return Some(k);
    }
    if kept.len() >= max {
        return None;
    }
    let k: &'static str = Box::leak(s.into());
    kept.insert(k, ());
    Some(k)
}

/// The values kept so far.
static VALUES: OnceLock<Kept> = OnceLock::new();

/// Kept strings found last on one thread, in 32 pairs of slots chosen by
/// [`recent_pair`]: a repeated one is found with one or two comparisons,
/// without hashing it or taking a shared table's lock.
struct Recent([Cell<Option<&'static str>>; 64]);

impl Recent {
    const fn new() -> Recent {
        Recent([const { Cell::new(None) }; 64])
    }

    fn find(&self, pair: usize, is: impl Fn(&str) -> bool) -> Option<&'static str> {
        self.0[pair..pair + 2]
            .iter()
            .filter_map(Cell::get)
            .find(|k| is(k))
    }

    /// Puts `kept` first in its pair; the pair's newer entry becomes its
    /// older one.
    fn remember(&self, pair: usize, kept: &'static str) {
        self.0[pair + 1].set(self.0[pair].get());
        self.0[pair].set(Some(kept));
    }
}

thread_local! {
    static RECENT_VALUES: Recent = const { Recent::new() };
    static RECENT_NAMES: Recent = const { Recent::new() };
}

/// A string value equal to `s`, kept for the life of the process when
/// short and while there is room.
pub(crate) fn intern(s: &str) -> StringValue {
    if s.len() > MAX_LEN {
        return StringValue::from(s.to_owned());
    }
    let pair = recent_pair(s.as_bytes(), 0);
    let hit = RECENT_VALUES.try_with(|r| r.find(pair, |k| k.as_bytes() == s.as_bytes()));
    if let Ok(Some(k)) = hit {
        return StringValue::from(k);
    }
    match keep(&VALUES, MAX_VALUES, s) {
        Some(k) => {
            let _ = RECENT_VALUES.try_with(|r| r.remember(pair, k));
            StringValue::from(k)
        }
        None => StringValue::from(s.to_owned()),
    }
}

/// Distinct span names kept for the life of the process.
const MAX_NAMES: usize = 1024;
/// Longer names are not kept.
const MAX_NAME_LEN: usize = 128;

/// The span names kept so far.
static NAMES: OnceLock<Kept> = OnceLock::new();

/// The span name `"{op} {target}"` (`chat gpt-4o`, `execute_tool search`).
/// Such names are few and repeat, so each distinct one is allocated once and
/// kept for the life of the process (at most [`MAX_NAMES`] of them, about
/// 128 KiB at worst): a span's name then costs neither an allocation on the
/// export thread nor a free where the span is dropped.
pub(crate) fn span_name(op: &str, target: &str) -> Cow<'static, str> {
    thread_local! {
        static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
    }
    fn join(out: &mut String, op: &str, target: &str) {
        out.push_str(op);
        out.push(' ');
        out.push_str(target);
    }
    let owned = || {
        let mut name = String::with_capacity(op.len() + 1 + target.len());
        join(&mut name, op, target);
        Cow::Owned(name)
    };
    if op.len() + 1 + target.len() > MAX_NAME_LEN {
        return owned();
    }
    let pair = recent_pair(target.as_bytes(), op.len());
    let is = |name: &str| {
        name.len() == op.len() + 1 + target.len()
            && name.as_bytes()[op.len()] == b' '
            && name.starts_with(op)
            && name.ends_with(target)
    };
    let hit = RECENT_NAMES.try_with(|r| r.find(pair, is));
    if let Ok(Some(name)) = hit {
        return Cow::Borrowed(name);
    }
    let name = SCRATCH
        .with(|scratch| {
            let mut scratch = scratch.try_borrow_mut().ok()?;
            scratch.clear();
            join(&mut scratch, op, target);
            keep(&NAMES, MAX_NAMES, &scratch).map(Cow::Borrowed)
        })
        .unwrap_or_else(owned);
    if let Cow::Borrowed(kept) = name {
        let _ = RECENT_NAMES.try_with(|r| r.remember(pair, kept));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_same_allocation() {
        let a = intern("gpt-4o");
        let b = intern("gpt-4o");
        assert_eq!(a.as_str(), "gpt-4o");
        assert!(std::ptr::eq(a.as_str().as_ptr(), b.as_str().as_ptr()));
        // Found through the shared table from another thread too.
        let c = std::thread::spawn(|| intern("gpt-4o").as_str().as_ptr() as usize)
            .join()
            .unwrap();
        assert_eq!(c, a.as_str().as_ptr() as usize);
        let long = "x".repeat(MAX_LEN + 1);
        assert_eq!(intern(&long).as_str(), long);
    }

    #[test]
    fn span_names_are_shared_and_bounded() {
        let a = span_name("chat", "gpt-4o");
        let b = span_name("chat", "gpt-4o");
        assert_eq!(a, "chat gpt-4o");
        assert!(matches!((&a, &b), (Cow::Borrowed(x), Cow::Borrowed(y)) if std::ptr::eq(*x, *y)));
        let long = "m".repeat(MAX_NAME_LEN);
        assert!(matches!(span_name("chat", &long), Cow::Owned(n) if n == format!("chat {long}")));
        for i in 0..(MAX_NAMES + 10) {
            assert_eq!(
                span_name("chat", &format!("model-{i}")),
                format!("chat model-{i}")
            );
        }
        let kept = NAMES.get().map(|n| n.lock().unwrap().len());
        assert_eq!(kept, Some(MAX_NAMES));
    }

    #[test]
    fn tables_are_bounded() {
        // A table of its own: the process-wide one is shared with the
        // other tests, which must find their values kept.
        static TABLE: OnceLock<Kept> = OnceLock::new();
        let first = keep(&TABLE, 8, "v0").unwrap();
        for i in 0..16 {
            let kept = keep(&TABLE, 8, &format!("v{i}"));
            assert_eq!(kept.is_some(), i < 8, "v{i}");
        }
        assert!(std::ptr::eq(keep(&TABLE, 8, "v0").unwrap(), first));
        assert_eq!(TABLE.get().unwrap().lock().unwrap().len(), 8);
    }
}
