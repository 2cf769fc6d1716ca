//! The sandbox's memory file: every app page and every Sentry-owned page (page tables on kvm)
//! is a page of it. On kvm it is guest-physical memory and the Sentry sees it through its
//! direct map; on the fallbacks it is a memfd that `vmm` maps. Either way the Sentry reaches
//! a page at `base + offset` and never through an app pointer.

use alloc::collections::{BTreeMap, BTreeSet};
use core::cell::RefCell;

use crate::errno::{Errno, ENOMEM};
use crate::host::Buf;

pub const PAGE_SIZE: u64 = 4096;

pub fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// Rounds up to a page; `None` on overflow.
pub fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE_SIZE - 1).map(page_down)
}

struct Frames {
    /// Never-used frames from here to `end` are known to be zero (a fresh memfd reads as zero).
    next_fresh: u64,
    end: u64,
    /// Freed frames, dirty: zeroed when handed out again. Handed out lowest first, so that a
    /// run of allocations gets ascending, mostly contiguous frames: the platform can then show
    /// a run of app pages with one mapping instead of one per page.
    free: BTreeSet<u64>,
    in_use: u64,
    /// Frames this allocator manages in all.
    capacity: u64,
    /// Frames with more than one owner (copy-on-write after `fork`): offset → extra owners.
    /// A frame not listed has exactly one owner.
    shared: BTreeMap<u64, u32>,
}

pub struct MemoryFile {
    base: u64,
    size: u64,
    frames: RefCell<Frames>,
}

impl MemoryFile {
    /// # Safety
    /// `[base, base + size)` must be a mapping of the memory file, valid for the Sentry's
    /// lifetime, and `[alloc_start, size)` must be free for this allocator's exclusive use.
    pub unsafe fn new(base: u64, size: u64, alloc_start: u64) -> MemoryFile {
        MemoryFile {
            base,
            size,
            frames: RefCell::new(Frames {
                next_fresh: alloc_start,
                end: size,
                free: BTreeSet::new(),
                in_use: 0,
                capacity: size.saturating_sub(alloc_start) / PAGE_SIZE,
                shared: BTreeMap::new(),
            }),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The Sentry address of the page at `offset`.
    pub fn sentry_addr(&self, offset: u64) -> u64 {
        debug_assert!(offset < self.size);
        self.base + offset
    }

    /// A Sentry-visible range of the file.
    pub fn buf(&self, offset: u64, len: u64) -> Buf {
        Buf {
            addr: self.sentry_addr(offset),
            len,
        }
    }

    /// A zero-filled page, or ENOMEM.
    pub fn alloc_page(&self) -> Result<u64, Errno> {
        let mut f = self.frames.borrow_mut();
        if f.in_use >= f.capacity {
            return Err(ENOMEM);
        }
        let off = if let Some(off) = f.free.pop_first() {
            self.zero(off, PAGE_SIZE);
            off
        } else if f.next_fresh + PAGE_SIZE <= f.end {
            let off = f.next_fresh;
            f.next_fresh += PAGE_SIZE;
            off
        } else {
            return Err(ENOMEM);
        };
        f.in_use += 1;
        Ok(off)
    }

    /// Drops one owner of the frame at `offset`; the last owner frees it.
    pub fn free_page(&self, offset: u64) {
        let mut f = self.frames.borrow_mut();
        if let Some(extra) = f.shared.get_mut(&offset) {
            *extra -= 1;
            if *extra == 0 {
                f.shared.remove(&offset);
            }
            return;
        }
        f.in_use -= 1;
        f.free.insert(offset);
    }

    /// Adds an owner to the frame at `offset` (a forked address space sharing it until one
    /// side writes).
    pub fn share_page(&self, offset: u64) {
        *self.frames.borrow_mut().shared.entry(offset).or_insert(0) += 1;
    }

    /// How many owners the frame at `offset` has (an allocated one).
    pub fn owners(&self, offset: u64) -> u32 {
        1 + self
            .frames
            .borrow()
            .shared
            .get(&offset)
            .copied()
            .unwrap_or(0)
    }

    /// Whether the frame at `offset` has more than one owner.
    pub fn is_shared(&self, offset: u64) -> bool {
        self.frames.borrow().shared.contains_key(&offset)
    }

    /// Pages currently allocated.
    pub fn pages_in_use(&self) -> u64 {
        self.frames.borrow().in_use
    }

    /// Frames this allocator manages in all.
    pub fn capacity(&self) -> u64 {
        self.frames.borrow().capacity
    }

    /// Frames that can still be handed out.
    pub fn pages_free(&self) -> u64 {
        let f = self.frames.borrow();
        f.capacity.saturating_sub(f.in_use)
    }

    fn check(&self, offset: u64, len: usize) {
        assert!(
            offset
                .checked_add(len as u64)
                .is_some_and(|e| e <= self.size),
            "memory file access out of range"
        );
    }

    pub fn zero(&self, offset: u64, len: u64) {
        self.check(offset, len as usize);
        // SAFETY: in range (checked); the memory file is mapped for the Sentry's lifetime. App
        // threads may race on app pages, which is their business: raw byte writes are sound.
        unsafe { core::ptr::write_bytes((self.base + offset) as *mut u8, 0, len as usize) };
    }

    /// Copies the page at `from` to the page at `to` (breaking copy-on-write).
    pub fn copy_page(&self, from: u64, to: u64) {
        self.check(from, PAGE_SIZE as usize);
        self.check(to, PAGE_SIZE as usize);
        assert_ne!(from, to, "copy of a page onto itself");
        // SAFETY: both pages are in range (checked) and distinct page-aligned frames, so they
        // do not overlap; the memory file is mapped for the Sentry's lifetime.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (self.base + from) as *const u8,
                (self.base + to) as *mut u8,
                PAGE_SIZE as usize,
            )
        };
    }

    pub fn write(&self, offset: u64, data: &[u8]) {
        self.check(offset, data.len());
        // SAFETY: as in `zero`; `data` is Sentry memory, not overlapping the file mapping's
        // target range.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                (self.base + offset) as *mut u8,
                data.len(),
            )
        };
    }

    pub fn read(&self, offset: u64, out: &mut [u8]) {
        self.check(offset, out.len());
        // SAFETY: as in `write`.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (self.base + offset) as *const u8,
                out.as_mut_ptr(),
                out.len(),
            )
        };
    }
}
