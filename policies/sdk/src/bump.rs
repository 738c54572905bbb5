//! The modules' allocator: a bump allocator over the linear memory.
//!
//! The host runs every call in a fresh instance and throws the instance away afterwards, so
//! memory never needs to be reused across calls, and within one evaluation most of it (the
//! input buffer, the index, the findings) lives until the end. A rule's allocations are many and
//! small (pointers, labels, messages); bumping a pointer makes each one a few instructions
//! instead of a free-list search. What is freed is reclaimed only when it was the last allocation (a `Vec` or `String`
//! growing at the end of the heap grows in place); the rest is left until the instance goes.
//! The host's memory cap bounds the whole instance as before.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ptr::null_mut;

const PAGE: usize = 64 * 1024;
/// The heap grows by at least this much at a time: `memory.grow` is a call into the host.
const MIN_GROWTH_PAGES: usize = 16;

/// See the module docs.
pub struct Bump {
    /// The next free byte; 0 until the first allocation places the heap.
    next: Cell<usize>,
    /// The end of the memory the heap may use.
    end: Cell<usize>,
}

// SAFETY: wasm32-unknown-unknown modules run single-threaded (no threads, no atomics), which is
// the only target this allocator is installed on.
unsafe impl Sync for Bump {}

impl Bump {
    pub const fn new() -> Bump {
        Bump {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    /// Makes `[start, start + size)` part of the heap, growing the memory when needed.
    fn reserve(&self, start: usize, size: usize) -> Option<usize> {
        let new_next = start.checked_add(size)?;
        if new_next > self.end.get() {
            let pages = (new_next - self.end.get())
                .div_ceil(PAGE)
                .max(MIN_GROWTH_PAGES);
            let previous = grow(pages)?;
            // The memory is ours alone: what was its end is where the heap ends.
            debug_assert_eq!(previous * PAGE, self.end.get());
            self.end.set((previous + pages) * PAGE);
        }
        Some(new_next)
    }
}

impl Default for Bump {
    fn default() -> Bump {
        Bump::new()
    }
}

#[cfg(target_arch = "wasm32")]
fn grow(pages: usize) -> Option<usize> {
    match core::arch::wasm32::memory_grow(0, pages) {
        usize::MAX => None,
        previous => Some(previous),
    }
}

#[cfg(target_arch = "wasm32")]
fn memory_end() -> usize {
    core::arch::wasm32::memory_size(0) * PAGE
}

// Native builds (the SDK's own tests) never install the allocator; these keep it compiling.
#[cfg(not(target_arch = "wasm32"))]
fn grow(_pages: usize) -> Option<usize> {
    None
}

#[cfg(not(target_arch = "wasm32"))]
fn memory_end() -> usize {
    0
}

// SAFETY: every block handed out lies inside the linear memory, is aligned as asked, and does
// not overlap a live block: the heap starts above all memory the module had when it began
// (its stack and static data) and only moves forward, except to take back the last block.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.end.get() == 0 {
            self.next.set(memory_end());
            self.end.set(memory_end());
        }
        let Some(start) = self.next.get().checked_next_multiple_of(layout.align()) else {
            return null_mut();
        };
        match self.reserve(start, layout.size()) {
            Some(next) => {
                self.next.set(next);
                start as *mut u8
            }
            None => null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        if start + layout.size() == self.next.get() {
            // The last block: it grows or shrinks where it is.
            return match self.reserve(start, new_size) {
                Some(next) => {
                    self.next.set(next);
                    ptr
                }
                None => null_mut(),
            };
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the layout's alignment is a valid one already, and the size is non-zero.
        let new =
            unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct; the old one holds `layout.size()` bytes.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
        }
        new
    }
}
