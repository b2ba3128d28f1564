//! Finding the next byte of a small set in text, 16 bytes at a time: the
//! characters JSON escapes (`content`), the bytes that can reveal a
//! credential (`scrub`).
//!
//! On x86_64 the blocks are tested with SSE2 (part of its baseline, so
//! always there); elsewhere with a branch-free loop the compiler
//! vectorizes. A property test checks that both find what a plain search
//! finds.

/// A set of bytes: how to mark its members in a 16-byte block, and how to
/// test one byte.
pub(crate) trait ByteSet {
    /// The block with every member's lane set to 0xff and the others to 0.
    #[cfg(target_arch = "x86_64")]
    fn hits(block: std::arch::x86_64::__m128i) -> std::arch::x86_64::__m128i;
    /// Whether `b` is a member.
    fn has(b: u8) -> bool;
}

/// The index of the first member of `S` at or after `from`, or
/// `bytes.len()`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn next<S: ByteSet>(bytes: &[u8], from: usize) -> usize {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_movemask_epi8};
    let mut i = from;
    while i + 16 <= bytes.len() {
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads 16
        // bytes inside `bytes` (`i + 16 <= bytes.len()`), unaligned loads
        // being allowed.
        let mask = unsafe {
            let block = _mm_loadu_si128(bytes.as_ptr().add(i).cast::<__m128i>());
            _mm_movemask_epi8(S::hits(block)) as u32
        };
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    if bytes.len() >= 16 && i < bytes.len() {
        // The last few bytes: the text's final 16 tested as one block, the
        // lanes before `i` (already tested) shifted out, instead of a
        // byte-by-byte test of each.
        let start = bytes.len() - 16;
        // SAFETY: as above; `start + 16 == bytes.len()`.
        let mask = unsafe {
            let block = _mm_loadu_si128(bytes.as_ptr().add(start).cast::<__m128i>());
            _mm_movemask_epi8(S::hits(block)) as u32
        } >> (i - start);
        return if mask != 0 {
            i + mask.trailing_zeros() as usize
        } else {
            bytes.len()
        };
    }
    rest::<S>(bytes, i)
}

/// [`next`] on targets other than x86_64.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn next<S: ByteSet>(bytes: &[u8], from: usize) -> usize {
    next_portable::<S>(bytes, from)
}

/// [`next`] for any target: 16 bytes at a time with a branch-free test the
/// compiler vectorizes.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
pub(crate) fn next_portable<S: ByteSet>(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 16) {
        let mut hits = 0u8;
        for &b in chunk {
            hits |= u8::from(S::has(b));
        }
        if hits != 0 {
            break;
        }
        i += 16;
    }
    rest::<S>(bytes, i)
}

/// The first member at or after `from`, byte by byte.
#[inline(always)]
fn rest<S: ByteSet>(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| S::has(b))
        .map_or(bytes.len(), |p| from + p)
}
