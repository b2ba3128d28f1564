//! Interning of short, low-cardinality values (provider, model, tool and agent
//! names, finish reasons): each thread keeps a small table of shared strings,
//! so a value seen before costs a hash and a reference-count increment instead
//! of an allocation on the application's thread and a free on the export thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

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

/// A shared string equal to `s`.
pub(crate) fn intern(s: &str) -> StringValue {
    if s.len() > MAX_LEN {
        return StringValue::from(s.to_owned());
    }
    TABLE.with(|t| {
        let Ok(mut table) = t.try_borrow_mut() else {
            return StringValue::from(s.to_owned());
        };
        if let Some((shared, ())) = table.get_key_value(s) {
            return StringValue::from(Arc::clone(shared));
        }
        if table.len() >= MAX_ENTRIES {
            return StringValue::from(s.to_owned());
        }
        let shared: Arc<str> = Arc::from(s);
        table.insert(Arc::clone(&shared), ());
        StringValue::from(shared)
    })
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
    fn table_is_bounded() {
        for i in 0..(MAX_ENTRIES * 2) {
            assert_eq!(intern(&format!("v{i}")).as_str(), format!("v{i}"));
        }
        TABLE.with(|t| assert!(t.borrow().len() <= MAX_ENTRIES));
    }
}
