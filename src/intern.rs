//! Interning of short, low-cardinality values (provider, model, tool and agent
//! names, finish reasons): each thread keeps a small table of shared strings,
//! so a value seen before costs a hash and a reference-count increment instead
//! of an allocation on the application's thread and a free on the export thread.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::StringValue;

/// Longer values are not interned: they are rarely repeated names.
const MAX_LEN: usize = 64;
/// Entries per thread; when full, new values are simply copied.
const MAX_ENTRIES: usize = 512;

/// FxHash: fast for short keys, and the table never sees untrusted volume
/// (it stops growing at `MAX_ENTRIES`).
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

thread_local! {
    static TABLE: RefCell<HashMap<Arc<str>, (), BuildHasherDefault<Fx>>> = RefCell::new(HashMap::default());
}

thread_local! {
    /// The values interned last, in 32 pairs of slots chosen by length and
    /// end bytes: a repeated name is found with one or two comparisons,
    /// without hashing it.
    static RECENT: RefCell<[Option<Arc<str>>; 64]> = const { RefCell::new([const { None }; 64]) };
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

/// A shared string equal to `s`.
pub(crate) fn intern(s: &str) -> StringValue {
    if s.len() > MAX_LEN {
        return StringValue::from(s.to_owned());
    }
    let pair = recent_pair(s.as_bytes(), 0);
    let hit = RECENT.try_with(|r| {
        let r = r.try_borrow().ok()?;
        r[pair..pair + 2]
            .iter()
            .flatten()
            .find(|shared| shared.as_bytes() == s.as_bytes())
            .map(|shared| StringValue::from(Arc::clone(shared)))
    });
    if let Ok(Some(v)) = hit {
        return v;
    }
    match shared(s) {
        Some(shared) => {
            let _ = RECENT.try_with(|r| {
                if let Ok(mut r) = r.try_borrow_mut() {
                    // The pair's newer entry becomes its older one.
                    r[pair + 1] = r[pair].take();
                    r[pair] = Some(Arc::clone(&shared));
                }
            });
            StringValue::from(shared)
        }
        None => StringValue::from(s.to_owned()),
    }
}

/// The table's shared copy of `s`, added if there is room.
fn shared(s: &str) -> Option<Arc<str>> {
    TABLE.with(|t| {
        let mut table = t.try_borrow_mut().ok()?;
        if let Some((shared, ())) = table.get_key_value(s) {
            return Some(Arc::clone(shared));
        }
        if table.len() >= MAX_ENTRIES {
            return None;
        }
        let shared: Arc<str> = Arc::from(s);
        table.insert(Arc::clone(&shared), ());
        Some(shared)
    })
}

/// Distinct span names kept for the life of the process.
const MAX_NAMES: usize = 1024;
/// Longer names are not kept.
const MAX_NAME_LEN: usize = 128;

/// The span names kept so far.
static NAMES: OnceLock<Mutex<HashMap<&'static str, (), BuildHasherDefault<Fx>>>> = OnceLock::new();

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
    // The names made last on this thread, in pairs of slots: a repeated
    // name is found by one or two comparisons, without the shared table's
    // lock.
    thread_local! {
        static RECENT_NAMES: [Cell<Option<&'static str>>; 64] = const { [const { Cell::new(None) }; 64] };
    }
    let pair = recent_pair(target.as_bytes(), op.len());
    let is = |name: &str| {
        name.len() == op.len() + 1 + target.len()
            && name.as_bytes()[op.len()] == b' '
            && name.starts_with(op)
            && name.ends_with(target)
    };
    let hit = RECENT_NAMES.try_with(|r| {
        r[pair..pair + 2]
            .iter()
            .filter_map(Cell::get)
            .find(|name| is(name))
    });
    if let Ok(Some(name)) = hit {
        return Cow::Borrowed(name);
    }
    let name = SCRATCH
        .with(|scratch| {
            let mut scratch = scratch.try_borrow_mut().ok()?;
            scratch.clear();
            join(&mut scratch, op, target);
            let mut names = NAMES.get_or_init(Default::default).lock().ok()?;
            if let Some((name, ())) = names.get_key_value(scratch.as_str()) {
                return Some(Cow::Borrowed(*name));
            }
            if names.len() >= MAX_NAMES {
                return None;
            }
            let name: &'static str = Box::leak(scratch.as_str().into());
            names.insert(name, ());
            Some(Cow::Borrowed(name))
        })
        .unwrap_or_else(owned);
    if let Cow::Borrowed(kept) = name {
        let _ = RECENT_NAMES.try_with(|r| {
            r[pair + 1].set(r[pair].get());
            r[pair].set(Some(kept));
        });
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
    fn table_is_bounded() {
        for i in 0..(MAX_ENTRIES * 2) {
            assert_eq!(intern(&format!("v{i}")).as_str(), format!("v{i}"));
        }
        TABLE.with(|t| assert!(t.borrow().len() <= MAX_ENTRIES));
    }
}
