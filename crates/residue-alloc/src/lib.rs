#![doc = include_str!("../README.md")]

use core::alloc::{GlobalAlloc, Layout};
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::alloc::System;

/// Shortest needle accepted: 16 bytes of secret material do not turn up in
/// unrelated memory by chance.
pub const MIN_NEEDLE_LEN: usize = 16;
/// Fewest distinct byte values a needle must have: a run of zeros or of one
/// digit would match padding and public numbers, not a secret.
pub const MIN_DISTINCT_BYTES: usize = 8;
/// Longest needle accepted (a 2048-bit number has 617 decimal digits).
pub const MAX_NEEDLE_LEN: usize = 1024;
/// Most needles watched at once.
pub const MAX_NEEDLES: usize = 64;
/// Bytes of static storage shared by all watched needles.
pub const NEEDLE_STORAGE: usize = 32 * 1024;
/// Findings kept in detail; more are only counted.
pub const MAX_RECORDED: usize = 16;

/// The global allocator: the system allocator, plus a scan of every block
/// freed (by `dealloc`, or the old block of a `realloc`) for the needles
/// registered with [`watch`].
///
/// ```
/// use shardkeep_residue_alloc::ResidueAlloc;
///
/// #[global_allocator]
/// static ALLOCATOR: ResidueAlloc = ResidueAlloc;
/// # fn main() {}
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct ResidueAlloc;

/// How a block with a needle in it was freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreedBy {
    /// `dealloc`: a buffer dropped without being wiped.
    Dealloc,
    /// The old block of a `realloc` (a growing `Vec`, say): the contents were
    /// copied to the new block and the old one freed as it was.
    Realloc,
}

/// A freed block that still held a needle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// The needle's index, as [`watch`] returned it.
    pub needle: usize,
    /// The size of the freed block.
    pub block_len: usize,
    /// Where in the block the needle starts (its first occurrence).
    pub offset: usize,
    /// How the block was freed.
    pub freed_by: FreedBy,
}

/// What [`finish`] returns: every (freed block, needle) pair found while
/// watching, the first [`MAX_RECORDED`] of them in detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    total: usize,
    recorded: [Option<Finding>; MAX_RECORDED],
}

impl Report {
    /// Whether no freed block held a needle.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.total == 0
    }

    /// How many (freed block, needle) pairs were found.
    #[must_use]
    pub fn total(&self) -> usize {
        self.total
    }

    /// The first findings, in the order the blocks were freed.
    pub fn findings(&self) -> impl Iterator<Item = Finding> + '_ {
        self.recorded.iter().flatten().copied()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return f.write_str("no freed block held a watched needle");
        }
        write!(f, "{} freed block(s) held a watched needle:", self.total)?;
        for finding in self.findings() {
            write!(
                f,
                " [needle {} at offset {} of a {}-byte block, {:?}]",
                finding.needle, finding.offset, finding.block_len, finding.freed_by
            )?;
        }
        Ok(())
    }
}

/// Why [`watch`] refused a needle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NeedleError {
    /// Shorter than [`MIN_NEEDLE_LEN`]: it could match by chance.
    TooShort {
        /// The needle's length.
        len: usize,
    },
    /// Longer than [`MAX_NEEDLE_LEN`].
    TooLong {
        /// The needle's length.
        len: usize,
    },
    /// Fewer than [`MIN_DISTINCT_BYTES`] distinct byte values: it could
    /// match padding or public data.
    TooUniform {
        /// How many distinct byte values it has.
        distinct: usize,
    },
    /// [`MAX_NEEDLES`] needles or [`NEEDLE_STORAGE`] bytes are in use.
    Full,
}

impl fmt::Display for NeedleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(
                f,
                "a {len}-byte needle is shorter than {MIN_NEEDLE_LEN} bytes and could match by chance"
            ),
            Self::TooLong { len } => {
                write!(
                    f,
                    "a {len}-byte needle is longer than {MAX_NEEDLE_LEN} bytes"
                )
            }
            Self::TooUniform { distinct } => write!(
                f,
                "a needle of {distinct} distinct byte values (fewer than {MIN_DISTINCT_BYTES}) could match public data"
            ),
            Self::Full => f.write_str("the needle storage is full"),
        }
    }
}

impl std::error::Error for NeedleError {}

// ------------------------------------------------------------ static state
//
// Everything lives in fixed-size statics of atomics: the allocator never
// allocates, and the crate needs no unsafe code besides the allocator
// itself. The needle storage and the findings are written only under LOCK;
// the atomics are there for interior mutability, not for lock-free access.

/// Number of needles watched; zero means "not watching", the fast path.
static NEEDLE_COUNT: AtomicUsize = AtomicUsize::new(0);
/// A spin lock over the needle storage and the findings.
static LOCK: AtomicBool = AtomicBool::new(false);
static NEEDLE_BYTES: [AtomicU8; NEEDLE_STORAGE] = [const { AtomicU8::new(0) }; NEEDLE_STORAGE];
static NEEDLE_START: [AtomicUsize; MAX_NEEDLES] = [const { AtomicUsize::new(0) }; MAX_NEEDLES];
static NEEDLE_LEN: [AtomicUsize; MAX_NEEDLES] = [const { AtomicUsize::new(0) }; MAX_NEEDLES];
static STORAGE_USED: AtomicUsize = AtomicUsize::new(0);
static FINDING_COUNT: AtomicUsize = AtomicUsize::new(0);
static FOUND_NEEDLE: [AtomicUsize; MAX_RECORDED] = [const { AtomicUsize::new(0) }; MAX_RECORDED];
static FOUND_BLOCK_LEN: [AtomicUsize; MAX_RECORDED] = [const { AtomicUsize::new(0) }; MAX_RECORDED];
static FOUND_OFFSET: [AtomicUsize; MAX_RECORDED] = [const { AtomicUsize::new(0) }; MAX_RECORDED];
/// 0: dealloc, 1: realloc.
static FOUND_BY_REALLOC: [AtomicBool; MAX_RECORDED] =
    [const { AtomicBool::new(false) }; MAX_RECORDED];

/// Holds [`LOCK`]; releases it on drop.
struct Locked;

impl Locked {
    fn acquire() -> Self {
        let mut spins = 0u32;
        while LOCK
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                // A system call, no allocation: lets a descheduled holder run.
                std::thread::yield_now();
            } else {
                core::hint::spin_loop();
            }
        }
        Self
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        LOCK.store(false, Ordering::Release);
    }
}

/// Starts (or continues) watching for `needle`: from now until [`finish`],
/// every heap block freed that still contains these bytes is a finding.
/// Returns the needle's index, which findings refer to.
///
/// Keep your own copies of the needle alive (or wipe them) until
/// [`finish`]: freeing them unwiped is a finding too.
///
/// # Errors
/// [`NeedleError`] for a needle that is too short, too long or too uniform
/// to mean anything, or when the storage is full.
pub fn watch(needle: &[u8]) -> Result<usize, NeedleError> {
    check_needle(needle)?;
    let _locked = Locked::acquire();
    let index = NEEDLE_COUNT.load(Ordering::Relaxed);
    let start = STORAGE_USED.load(Ordering::Relaxed);
    if index == MAX_NEEDLES || NEEDLE_STORAGE - start < needle.len() {
        return Err(NeedleError::Full);
    }
    for (slot, &byte) in NEEDLE_BYTES[start..].iter().zip(needle) {
        slot.store(byte, Ordering::Relaxed);
    }
    NEEDLE_START[index].store(start, Ordering::Relaxed);
    NEEDLE_LEN[index].store(needle.len(), Ordering::Relaxed);
    STORAGE_USED.store(start + needle.len(), Ordering::Relaxed);
    // Publishes the needle to the fast path of other threads.
    NEEDLE_COUNT.store(index + 1, Ordering::Release);
    Ok(index)
}

fn check_needle(needle: &[u8]) -> Result<(), NeedleError> {
    let len = needle.len();
    if len < MIN_NEEDLE_LEN {
        return Err(NeedleError::TooShort { len });
    }
    if len > MAX_NEEDLE_LEN {
        return Err(NeedleError::TooLong { len });
    }
    let mut seen = [false; 256];
    for &byte in needle {
        seen[usize::from(byte)] = true;
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    if distinct < MIN_DISTINCT_BYTES {
        return Err(NeedleError::TooUniform { distinct });
    }
    Ok(())
}

/// Stops watching: wipes and forgets every needle, and returns what was
/// found since the first [`watch`] (then forgets that too).
#[must_use]
pub fn finish() -> Report {
    let _locked = Locked::acquire();
    NEEDLE_COUNT.store(0, Ordering::Release);
    let used = STORAGE_USED.swap(0, Ordering::Relaxed);
    for byte in &NEEDLE_BYTES[..used] {
        byte.store(0, Ordering::Relaxed);
    }
    let total = FINDING_COUNT.swap(0, Ordering::Relaxed);
    let mut recorded = [None; MAX_RECORDED];
    for (i, out) in recorded.iter_mut().enumerate().take(total) {
        *out = Some(Finding {
            needle: FOUND_NEEDLE[i].load(Ordering::Relaxed),
            block_len: FOUND_BLOCK_LEN[i].load(Ordering::Relaxed),
            offset: FOUND_OFFSET[i].load(Ordering::Relaxed),
            freed_by: if FOUND_BY_REALLOC[i].load(Ordering::Relaxed) {
                FreedBy::Realloc
            } else {
                FreedBy::Dealloc
            },
        });
    }
    Report { total, recorded }
}

/// Whether any needle is watched (one relaxed load: the whole cost of the
/// allocator when idle).
#[must_use]
pub fn is_watching() -> bool {
    NEEDLE_COUNT.load(Ordering::Acquire) != 0
}

/// Looks for every watched needle in a block about to be freed, and records
/// each one found. Allocation-free: the needle is copied to the stack.
fn scan(block: &[u8], freed_by: FreedBy) {
    let _locked = Locked::acquire();
    let count = NEEDLE_COUNT.load(Ordering::Relaxed);
    let mut needle = [0u8; MAX_NEEDLE_LEN];
    for index in 0..count {
        let start = NEEDLE_START[index].load(Ordering::Relaxed);
        let len = NEEDLE_LEN[index].load(Ordering::Relaxed);
        for (out, byte) in needle.iter_mut().zip(&NEEDLE_BYTES[start..start + len]) {
            *out = byte.load(Ordering::Relaxed);
        }
        if let Some(offset) = find(block, &needle[..len]) {
            record(Finding {
                needle: index,
                block_len: block.len(),
                offset,
                freed_by,
            });
        }
    }
    // The stack copy held secret bytes; `black_box` keeps the wipe from
    // being optimised away as a dead store.
    needle.fill(0);
    core::hint::black_box(&needle);
}

/// First occurrence of `needle` (non-empty) in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last_start = haystack.len().checked_sub(needle.len())?;
    (0..=last_start).find(|&i| haystack[i] == first && haystack[i + 1..i + needle.len()] == *rest)
}

/// Called under the lock.
fn record(finding: Finding) {
    let slot = FINDING_COUNT.load(Ordering::Relaxed);
    FINDING_COUNT.store(slot.saturating_add(1), Ordering::Relaxed);
    if slot < MAX_RECORDED {
        FOUND_NEEDLE[slot].store(finding.needle, Ordering::Relaxed);
        FOUND_BLOCK_LEN[slot].store(finding.block_len, Ordering::Relaxed);
        FOUND_OFFSET[slot].store(finding.offset, Ordering::Relaxed);
        FOUND_BY_REALLOC[slot].store(finding.freed_by == FreedBy::Realloc, Ordering::Relaxed);
    }
}

// ------------------------------------------------------------- allocator

// The one unsafe item of this crate (and the reason it exists as a crate:
// the rest of the workspace forbids unsafe code). `GlobalAlloc` is an
// unsafe trait; each method passes the caller's contract on to `System`.
#[allow(unsafe_code)]
// SAFETY: every block handed out comes from `System` with the layout asked
// for, and is returned to `System` with that same layout; the scans only
// read a block while it is still allocated and owned by the freeing call.
unsafe impl GlobalAlloc for ResidueAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Zero-filled, so that every byte of a block is initialised when a
        // scan reads it, even bytes the program never wrote.
        // SAFETY: the caller guarantees `layout` has a non-zero size, which
        // is all `System.alloc_zeroed` requires.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`: the caller's non-zero-size layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_watching() {
            // SAFETY: the caller guarantees `ptr` is a block this allocator
            // returned for `layout`, still allocated: it is valid for reads
            // of `layout.size()` bytes, and nothing else uses it during
            // `dealloc`. Every byte was initialised (zero-filled at
            // allocation, zero-extended on reallocation); a byte the program
            // later overwrote with uninitialised data (struct padding) is
            // read as whatever the machine holds, which a test allocator
            // accepts.
            let block = unsafe { core::slice::from_raw_parts(ptr, layout.size()) };
            scan(block, FreedBy::Dealloc);
        }
        // SAFETY: `ptr` came from `System` (through `alloc`, `alloc_zeroed`
        // or `realloc` above) with this same `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !is_watching() {
            // SAFETY: the caller's contract for `realloc` (a live block of
            // `layout`, a valid non-zero `new_size`) is `System`'s.
            let new = unsafe { System.realloc(ptr, layout, new_size) };
            if !new.is_null() && new_size > layout.size() {
                // SAFETY: `new` is valid for writes of `new_size` bytes; the
                // grown tail starts at `layout.size() < new_size`.
                unsafe {
                    new.add(layout.size())
                        .write_bytes(0, new_size - layout.size());
                }
            }
            return new;
        }
        // While watching, always move: the old block is then really freed
        // with its contents, whether or not `System` could have grown it in
        // place, so the finding does not depend on the heap's state.
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        // SAFETY: `new_size` is non-zero (the caller's contract).
        let new = unsafe { System.alloc_zeroed(new_layout) };
        if new.is_null() {
            // The old block stays allocated and untouched, as `realloc`
            // promises on failure.
            return new;
        }
        // SAFETY: `ptr` is valid for reads of `layout.size()` bytes, `new`
        // for writes of `new_size` bytes, and two live blocks do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        // SAFETY: as in `dealloc`: a live, initialised block of
        // `layout.size()` bytes owned by this call.
        let old = unsafe { core::slice::from_raw_parts(ptr, layout.size()) };
        scan(old, FreedBy::Realloc);
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_locates_the_first_occurrence() {
        assert_eq!(find(b"abcabc", b"bc"), Some(1));
        assert_eq!(find(b"abcabc", b"cab"), Some(2));
        assert_eq!(find(b"abc", b"abcd"), None);
        assert_eq!(find(b"abc", b""), None);
        assert_eq!(find(b"", b"a"), None);
        assert_eq!(find(b"aab", b"ab"), Some(1));
    }

    #[test]
    fn short_and_uniform_needles_are_refused() {
        assert_eq!(
            check_needle(b"0123456789abcde"),
            Err(NeedleError::TooShort { len: 15 })
        );
        assert_eq!(
            check_needle(&[0u8; 64]),
            Err(NeedleError::TooUniform { distinct: 1 })
        );
        assert_eq!(
            check_needle(b"0101010123232323454545456666"),
            Err(NeedleError::TooUniform { distinct: 7 })
        );
        assert_eq!(
            check_needle(&[7u8; MAX_NEEDLE_LEN + 1]),
            Err(NeedleError::TooLong {
                len: MAX_NEEDLE_LEN + 1
            })
        );
        assert_eq!(check_needle(b"0123456789abcdef"), Ok(()));
    }
}
