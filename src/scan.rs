//! Finding the next byte of a small set in text, a block at a time: the
//! characters JSON escapes (`content`), the bytes that can reveal a
//! credential (`scrub`).
//!
//! On x86_64 text is tested 16 bytes at a time with SSE2 (part of its
//! baseline, so always there), and 64 at a time (two 32-byte AVX2 blocks
//! tested together) where the processor has AVX2 (detected once, at run
//! time) and at least [`WIDE`] bytes remain: prompts and documents of several kilobytes are searched
//! twice on the export path (for credentials, then for characters to
//! escape), and the wider blocks take about half the instructions.
//! Elsewhere a branch-free loop the compiler vectorizes does the work.
//! Property tests check that every path finds what a plain search finds.

/// A set of bytes: a few members compared one by one, and optionally every
/// byte below a bound.
pub(crate) trait ByteSet {
    /// Members tested for equality (a handful at most: one comparison each
    /// per block).
    const EQUAL: &'static [u8];
    /// Every byte below this one is a member too; 0 for none.
    const BELOW: u8;

    /// Whether `b` is a member.
    #[inline(always)]
    fn has(b: u8) -> bool {
        b < Self::BELOW || Self::EQUAL.contains(&b)
    }
}

/// The least number of remaining bytes searched with AVX2 blocks; fewer
/// are not worth a look at the processor's features.
#[cfg(target_arch = "x86_64")]
pub(crate) const WIDE: usize = 64;

/// The index of the first member of `S` at or after `from`, or
/// `bytes.len()`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn next<S: ByteSet>(bytes: &[u8], from: usize) -> usize {
    if bytes.len().saturating_sub(from) >= WIDE && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2 (just checked).
        return unsafe { next_avx2::<S>(bytes, from) };
    }
    next_sse2::<S>(bytes, from)
}

/// The members of `S` in a 16-byte block: their lanes set to 0xff, the
/// others to 0.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn hits_sse2<S: ByteSet>(v: std::arch::x86_64::__m128i) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline.
    unsafe {
        let mut hits = if S::BELOW > 0 {
            // A byte is below the bound exactly when min(byte, bound - 1)
            // is the byte.
            _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8((S::BELOW - 1) as i8)), v)
        } else {
            _mm_setzero_si128()
        };
        for &m in S::EQUAL {
            hits = _mm_or_si128(hits, _mm_cmpeq_epi8(v, _mm_set1_epi8(m as i8)));
        }
        hits
    }
}

/// [`next`] with 16-byte blocks only.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn next_sse2<S: ByteSet>(bytes: &[u8], from: usize) -> usize {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_movemask_epi8};
    let mut i = from;
    while i + 16 <= bytes.len() {
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads 16
        // bytes inside `bytes` (`i + 16 <= bytes.len()`), unaligned loads
        // being allowed.
        let mask = unsafe {
            let block = _mm_loadu_si128(bytes.as_ptr().add(i).cast::<__m128i>());
            _mm_movemask_epi8(hits_sse2::<S>(block)) as u32
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
            _mm_movemask_epi8(hits_sse2::<S>(block)) as u32
        } >> (i - start);
        return if mask != 0 {
            i + mask.trailing_zeros() as usize
        } else {
            bytes.len()
        };
    }
    rest::<S>(bytes, i)
}

/// [`hits_sse2`] for a 32-byte block.
///
/// # Safety
///
/// The processor must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn hits_avx2<S: ByteSet>(v: std::arch::x86_64::__m256i) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_min_epu8, _mm256_or_si256, _mm256_set1_epi8, _mm256_setzero_si256,
    };
    let mut hits = if S::BELOW > 0 {
        _mm256_cmpeq_epi8(
            _mm256_min_epu8(v, _mm256_set1_epi8((S::BELOW - 1) as i8)),
            v,
        )
    } else {
        _mm256_setzero_si256()
    };
    for &m in S::EQUAL {
        hits = _mm256_or_si256(hits, _mm256_cmpeq_epi8(v, _mm256_set1_epi8(m as i8)));
    }
    hits
}

/// [`next`] with 32-byte blocks, for text of at least 32 bytes past `from`.
///
/// # Safety
///
/// The processor must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn next_avx2<S: ByteSet>(bytes: &[u8], from: usize) -> usize {
    use std::arch::x86_64::{
        __m256i, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256, _mm256_testz_si256,
    };
    debug_assert!(bytes.len() >= from + 32);
    let mut i = from;
    // Two blocks per turn, tested together: half the loop's own
    // instructions per byte.
    while i + 64 <= bytes.len() {
        // SAFETY: the caller checked for AVX2; the loads read 64 bytes
        // inside `bytes` (`i + 64 <= bytes.len()`), unaligned loads being
        // allowed.
        let (a, b) = unsafe {
            let at = bytes.as_ptr().add(i);
            (
                hits_avx2::<S>(_mm256_loadu_si256(at.cast::<__m256i>())),
                hits_avx2::<S>(_mm256_loadu_si256(at.add(32).cast::<__m256i>())),
            )
        };
        let either = _mm256_or_si256(a, b);
        if _mm256_testz_si256(either, either) == 0 {
            let mask = (_mm256_movemask_epi8(a) as u32 as u64)
                | ((_mm256_movemask_epi8(b) as u32 as u64) << 32);
            return i + mask.trailing_zeros() as usize;
        }
        i += 64;
    }
    if i + 32 <= bytes.len() {
        // SAFETY: the caller checked for AVX2; the load reads 32 bytes
        // inside `bytes` (`i + 32 <= bytes.len()`), unaligned loads being
        // allowed.
        let mask = unsafe {
            let block = _mm256_loadu_si256(bytes.as_ptr().add(i).cast::<__m256i>());
            _mm256_movemask_epi8(hits_avx2::<S>(block)) as u32
        };
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 32;
    }
    if i == bytes.len() {
        return i;
    }
    // The last few bytes as in `next_sse2`: the final 32, the lanes before
    // `i` shifted out (`bytes.len() >= 32`, `i - start < 32`).
    let start = bytes.len() - 32;
    // SAFETY: as above; `start + 32 == bytes.len()`.
    let mask = unsafe {
        let block = _mm256_loadu_si256(bytes.as_ptr().add(start).cast::<__m256i>());
        _mm256_movemask_epi8(hits_avx2::<S>(block)) as u32
    } >> (i - start);
    if mask != 0 {
        i + mask.trailing_zeros() as usize
    } else {
        bytes.len()
    }
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
