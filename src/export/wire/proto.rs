//! The protobuf wire format's pieces: varints, keys and lengths, any
//! values and key-value pairs, and the staging buffer that gathers a
//! span's small fields for one copy.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TraceState;
use opentelemetry::{Array, KeyValue, Value};

pub(super) const VARINT: u64 = 0;
pub(super) const FIXED64: u64 = 1;
pub(super) const LEN: u64 = 2;
pub(super) const FIXED32: u64 = 5;

/// `SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`.
pub(super) const HAS_IS_REMOTE: u32 = 0x100;
/// `SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`.
pub(super) const IS_REMOTE: u32 = 0x200;

pub(super) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes of a length-delimited field with a one-byte key.
pub(super) fn field_len(body: usize) -> usize {
    1 + varint_len(body as u64) + body
}

/// Bytes of a string field with a one-byte key (none when empty).
pub(super) fn str_field_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        field_len(s.len())
    }
}

/// Bytes of an unsigned field with a one-byte key (none when zero).
pub(super) fn uint_field_len(v: u64) -> usize {
    if v == 0 {
        0
    } else {
        1 + varint_len(v)
    }
}

pub(super) fn put_varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

pub(super) fn put_key(b: &mut Vec<u8>, field: u32, wire: u64) {
    put_varint(b, (u64::from(field) << 3) | wire);
}

/// The key and length of a length-delimited field whose body follows.
pub(super) fn put_len(b: &mut Vec<u8>, field: u32, len: usize) {
    put_key(b, field, LEN);
    put_varint(b, len as u64);
}

pub(super) fn put_bytes(b: &mut Vec<u8>, field: u32, data: &[u8]) {
    put_len(b, field, data.len());
    b.extend_from_slice(data);
}

/// A string field; empty strings are left out, as proto3 does.
pub(super) fn put_str(b: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(b, field, s.as_bytes());
    }
}

pub(super) fn put_uint(b: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(b, field, VARINT);
        put_varint(b, v);
    }
}

pub(super) fn put_fixed64(b: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(b, field, FIXED64);
        b.extend_from_slice(&v.to_le_bytes());
    }
}

pub(super) fn put_fixed32(b: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        put_key(b, field, FIXED32);
        b.extend_from_slice(&v.to_le_bytes());
    }
}

/// A message field of rare or small messages, written even when empty (the
/// field is present). One byte is reserved for the length; a longer body is
/// moved to make room.
pub(super) fn put_message(b: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    put_key(b, field, LEN);
    let at = b.len();
    b.push(0);
    body(b);
    let len = b.len() - at - 1;
    if len < 0x80 {
        b[at] = len as u8;
        return;
    }
    let mut prefix = Vec::with_capacity(10);
    put_varint(&mut prefix, len as u64);
    b.splice(at..at + 1, prefix);
}

pub(super) fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Bytes of an `AnyValue` body.
fn any_value_len(v: &Value) -> usize {
    match v {
        Value::String(s) => field_len(s.as_str().len()),
        Value::Bool(_) => 2,
        Value::I64(x) => 1 + varint_len(*x as u64),
        Value::F64(_) => 9,
        Value::Array(a) => field_len(array_len(a)),
        _ => 0,
    }
}

/// Bytes of an `ArrayValue` body: each element an `AnyValue` in field 1.
fn array_len(a: &Array) -> usize {
    match a {
        Array::Bool(xs) => xs.len() * field_len(2),
        Array::I64(xs) => xs
            .iter()
            .map(|x| field_len(1 + varint_len(*x as u64)))
            .sum(),
        Array::F64(xs) => xs.len() * field_len(9),
        Array::String(xs) => xs
            .iter()
            .map(|x| field_len(field_len(x.as_str().len())))
            .sum(),
        _ => 0,
    }
}

/// `AnyValue`: the variant is always written, even a default value.
fn put_any_value(b: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => put_bytes(b, 1, s.as_str().as_bytes()),
        Value::Bool(x) => {
            put_key(b, 2, VARINT);
            put_varint(b, u64::from(*x));
        }
        Value::I64(x) => {
            put_key(b, 3, VARINT);
            put_varint(b, *x as u64);
        }
        Value::F64(x) => {
            put_key(b, 4, FIXED64);
            b.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Value::Array(a) => {
            put_len(b, 5, array_len(a));
            match a {
                Array::Bool(xs) => xs.iter().for_each(|x| {
                    put_len(b, 1, 2);
                    put_any_value(b, &Value::Bool(*x));
                }),
                Array::I64(xs) => xs.iter().for_each(|x| {
                    put_len(b, 1, 1 + varint_len(*x as u64));
                    put_any_value(b, &Value::I64(*x));
                }),
                Array::F64(xs) => xs.iter().for_each(|x| {
                    put_len(b, 1, 9);
                    put_any_value(b, &Value::F64(*x));
                }),
                Array::String(xs) => xs.iter().for_each(|x| {
                    put_len(b, 1, field_len(x.as_str().len()));
                    put_bytes(b, 1, x.as_str().as_bytes());
                }),
                // A kind of array added later: an empty array.
                _ => {}
            }
        }
        // A kind of value added later: an empty value.
        _ => {}
    }
}

/// Bytes of a `KeyValue` body.
fn kv_len(kv: &KeyValue) -> usize {
    str_field_len(kv.key.as_str()) + field_len(any_value_len(&kv.value))
}

/// Bytes of repeated `KeyValue`s in a field with a one-byte key.
pub(super) fn attrs_len(attrs: &[KeyValue]) -> usize {
    attrs.iter().map(|kv| field_len(kv_len(kv))).sum()
}

/// Strings at most this long are copied through a [`Stage`].
const SHORT: usize = 32;

/// Up to 128 bytes gathered on the stack and appended to a buffer in one
/// fixed-size copy. The tags, lengths and short keys that make up most of a
/// span then cost a few stores each, where writing them one by one into the
/// buffer costs a capacity check per byte and a call to `memcpy` per key.
///
/// Callers stage at most 10 bytes per varint, 9 per fixed value, [`SHORT`]
/// per string and 1 per tag, and flush before 128: every index is in bounds
/// by construction (a mistake would panic in tests, not corrupt output).
pub(super) struct Stage {
    bytes: [u8; 128],
    len: usize,
}

impl Stage {
    #[inline(always)]
    pub(super) fn new() -> Stage {
        Stage {
            bytes: [0; 128],
            len: 0,
        }
    }

    /// Four bytes in one store.
    #[inline(always)]
    fn four(&mut self, x: [u8; 4]) {
        self.bytes[self.len..self.len + 4].copy_from_slice(&x);
        self.len += 4;
    }

    #[inline(always)]
    pub(super) fn byte(&mut self, x: u8) {
        self.bytes[self.len] = x;
        self.len += 1;
    }

    #[inline(always)]
    pub(super) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// The key of a field numbered below 16 (one byte).
    #[inline(always)]
    pub(super) fn key(&mut self, field: u32, wire: u64) {
        debug_assert!(field < 16);
        self.byte(((field as u8) << 3) | wire as u8);
    }

    #[inline(always)]
    pub(super) fn fixed64(&mut self, v: u64) {
        self.bytes[self.len..self.len + 8].copy_from_slice(&v.to_le_bytes());
        self.len += 8;
    }

    /// At most [`SHORT`] bytes, copied in overlapping fixed-size pieces so
    /// that no call to `memcpy` is made.
    #[inline(always)]
    fn short(&mut self, s: &[u8]) {
        let n = s.len();
        debug_assert!(n <= SHORT);
        let dst = &mut self.bytes[self.len..self.len + SHORT];
        if n >= 16 {
            dst[..16].copy_from_slice(&s[..16]);
            dst[n - 16..n].copy_from_slice(&s[n - 16..]);
        } else if n >= 8 {
            dst[..8].copy_from_slice(&s[..8]);
            dst[n - 8..n].copy_from_slice(&s[n - 8..]);
        } else if n >= 4 {
            dst[..4].copy_from_slice(&s[..4]);
            dst[n - 4..n].copy_from_slice(&s[n - 4..]);
        } else {
            for (d, x) in dst.iter_mut().zip(s) {
                *d = *x;
            }
        }
        self.len += n;
    }

    /// A length-delimited field: staged when short, else the stage is
    /// flushed and the bytes appended.
    #[inline(always)]
    pub(super) fn bytes_field(&mut self, b: &mut Vec<u8>, field: u32, data: &[u8]) {
        self.key(field, LEN);
        self.varint(data.len() as u64);
        self.data(b, data);
    }

    /// Bytes without a header, as [`Stage::bytes_field`].
    #[inline(always)]
    fn data(&mut self, b: &mut Vec<u8>, data: &[u8]) {
        if data.len() <= SHORT && self.len <= 128 - SHORT {
            self.short(data);
        } else {
            self.flush(b);
            b.extend_from_slice(data);
        }
    }

    /// Appends the staged bytes to `b` and empties the stage.
    #[inline(always)]
    pub(super) fn flush(&mut self, b: &mut Vec<u8>) {
        let at = b.len();
        let (head, tail) = self.bytes.split_at(64);
        b.extend_from_slice(head);
        if self.len > 64 {
            b.extend_from_slice(tail);
        }
        b.truncate(at + self.len);
        self.len = 0;
    }
}

/// One `KeyValue` in a field with a one-byte key.
pub(super) fn put_kv(b: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    if put_short_kv(b, field, key.as_bytes(), value) {
        return;
    }
    let value_len = any_value_len(value);
    let mut st = Stage::new();
    st.key(field, LEN);
    st.varint((str_field_len(key) + field_len(value_len)) as u64);
    let key = key.as_bytes();
    if !key.is_empty() {
        // At most 11 bytes staged so far.
        st.bytes_field(b, 1, key);
    }
    // At most 11 + 11 + 32 bytes staged so far; the value adds at most 21.
    st.key(2, LEN);
    st.varint(value_len as u64);
    match value {
        Value::String(s) => st.bytes_field(b, 1, s.as_str().as_bytes()),
        Value::Bool(x) => {
            st.key(2, VARINT);
            st.byte(u8::from(*x));
        }
        Value::I64(x) => {
            st.key(3, VARINT);
            st.varint(*x as u64);
        }
        Value::F64(x) => {
            st.key(4, FIXED64);
            st.fixed64(x.to_bits());
        }
        _ => {
            st.flush(b);
            put_any_value(b, value);
        }
    }
    st.flush(b);
}

/// The common pair, written in one pass: a key of 1 to [`SHORT`] bytes
/// and a string of at most [`SHORT`] bytes or a scalar. Every length then
/// fits in one byte (the pair's body is at most 2 + 32 + 2 + 34 bytes), so
/// none is computed apart and no varint loop runs for them. `false` (and
/// nothing written) for any other pair.
#[inline(always)]
fn put_short_kv(b: &mut Vec<u8>, field: u32, key: &[u8], value: &Value) -> bool {
    debug_assert!(field < 16, "a one-byte field key");
    if key.is_empty() || key.len() > SHORT {
        return false;
    }
    let any_len = match value {
        Value::String(s) if s.as_str().len() <= SHORT => 2 + s.as_str().len(),
        Value::Bool(_) => 2,
        Value::I64(x) => 1 + varint_len(*x as u64),
        Value::F64(_) => 9,
        _ => return false,
    };
    let mut st = Stage::new();
    let body = 2 + key.len() + 2 + any_len;
    st.four([
        ((field as u8) << 3) | LEN as u8,
        body as u8,
        (1 << 3) | LEN as u8,
        key.len() as u8,
    ]);
    st.short(key);
    let value_head = (2 << 3) | LEN as u8;
    match value {
        Value::String(s) => {
            let v = s.as_str().as_bytes();
            st.four([
                value_head,
                any_len as u8,
                (1 << 3) | LEN as u8,
                v.len() as u8,
            ]);
            st.short(v);
        }
        Value::Bool(x) => st.four([
            value_head,
            any_len as u8,
            (2 << 3) | VARINT as u8,
            u8::from(*x),
        ]),
        Value::I64(x) => {
            st.byte(value_head);
            st.byte(any_len as u8);
            st.key(3, VARINT);
            st.varint(*x as u64);
        }
        Value::F64(x) => {
            st.byte(value_head);
            st.byte(any_len as u8);
            st.key(4, FIXED64);
            st.fixed64(x.to_bits());
        }
        _ => {}
    }
    st.flush(b);
    true
}

pub(super) fn put_attributes<'a>(
    b: &mut Vec<u8>,
    field: u32,
    attrs: impl IntoIterator<Item = &'a KeyValue>,
) {
    for kv in attrs {
        put_kv(b, field, kv.key.as_str(), &kv.value);
    }
}

pub(super) fn put_trace_state(b: &mut Vec<u8>, field: u32, ts: &TraceState) {
    if *ts != TraceState::NONE {
        put_str(b, field, &ts.header());
    }
}
