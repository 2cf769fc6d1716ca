//! The memory manager: an app address space as VMAs (what the app may access) and pages (which
//! page of the memory file backs which app page). Pages are allocated on first touch (demand
//! faults) and shown to the app through the platform's [`AddressSpace`].
//!
//! `fork` is copy-on-write: parent and child share every frame (the memory file counts owners)
//! and show writable pages read-only; the first write — by the app (a fault) or by the Sentry on
//! its behalf (`copy_out`, a `read` into the page) — copies a frame that is still shared, or
//! just re-shows it writable once the other side has let go of it.
//!
//! The Sentry reads and writes app memory only here ([`Mm::copy_in`], [`Mm::copy_out`],
//! [`Mm::io_bufs`]), after checking the VMA's rights — never through an app pointer.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::vec::Vec;

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::abi::{USER_BOTTOM, USER_TOP};
use crate::errno::{Errno, EACCES, EEXIST, EFAULT, EINVAL, ENOMEM};
use crate::host::Buf;
use crate::memfile::{page_down, page_up, MemoryFile, PAGE_SIZE};
use crate::platform::{Access, AddressSpace};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaKind {
    Anon,
    Image,
    Brk,
    Stack,
    /// Trampoline slots of patched syscall sites ([`crate::patch`]).
    Syscalls,
    /// `MAP_SHARED | MAP_ANONYMOUS`: a `fork` shares its frames for good (no copy-on-write),
    /// so parent and child see each other's writes.
    SharedAnon,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    pub end: u64,
    pub access: Access,
    pub kind: VmaKind,
    /// Whether `mprotect` may add write access (Linux's `VM_MAYWRITE`): false for a shared
    /// mapping of a file that cannot be written through it (opened read-only, write-sealed,
    /// or a host file, whose shared mappings here are copies).
    pub may_write: bool,
}

/// VMAs as (start, end, rights).
pub type VmaList = Vec<(u64, u64, Access)>;
/// Pages as (app page, memory-file offset of its frame).
pub type PageList = Vec<(u64, u64)>;

/// Top of the region `mmap` hands out addresses from (top-down), below the stack.
const MMAP_TOP: u64 = 0x7f00_0000_0000;
pub const STACK_SIZE: u64 = 8 << 20;

pub struct Mm<S: AddressSpace> {
    pub space: S,
    mem: Rc<MemoryFile>,
    /// start → VMA; VMAs never overlap.
    vmas: BTreeMap<u64, Vma>,
    /// app page → memory-file offset, for pages that have been touched.
    pages: BTreeMap<u64, u64>,
    /// Pages of writable VMAs shown read-only because their frame is (or was, until the other
    /// owner let go) shared after a `fork`: the next write to one breaks the sharing.
    cow: BTreeSet<u64>,
    brk_start: u64,
    brk: u64,
    /// Trampoline pages of patched syscall sites and how many slots of each are used
    /// ([`crate::patch`]).
    pub(crate) syscall_pages: Vec<(u64, u32)>,
}

/// Pages populated (or re-shown after copy-on-write) per fault.
const FAULT_AROUND: u64 = 16;

/// `access` without write (still readable: x86-64 has no write-only pages).
fn read_only(access: Access) -> Access {
    Access {
        read: true,
        write: false,
        execute: access.execute,
    }
}

/// Shows `(app page, frame, rights)` entries, merging runs contiguous both in the app and in
/// the memory file with equal rights into one platform call each.
fn map_runs<S: AddressSpace>(space: &mut S, pages: &[(u64, u64, Access)]) -> Result<(), Errno> {
    let mut i = 0;
    while i < pages.len() {
        let (va, off, access) = pages[i];
        let mut n = 1;
        while let Some(&(v, o, a)) = pages.get(i + n) {
            let step = n as u64 * PAGE_SIZE;
            if v != va + step || o != off + step || a != access {
                break;
            }
            n += 1;
        }
        space.map_file(va, off, n as u64 * PAGE_SIZE, access)?;
        i += n;
    }
    Ok(())
}

/// A failed app access: the signal's `si_code` distinction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segv {
    /// No mapping (SEGV_MAPERR).
    MapErr,
    /// Mapping forbids the access (SEGV_ACCERR).
    AccErr,
    /// Out of memory while populating.
    Oom,
}

impl<S: AddressSpace> Mm<S> {
    pub fn new(space: S, mem: Rc<MemoryFile>) -> Self {
        Mm {
            space,
            mem,
            vmas: BTreeMap::new(),
            pages: BTreeMap::new(),
            cow: BTreeSet::new(),
            brk_start: 0,
            brk: 0,
            syscall_pages: Vec::new(),
        }
    }

    pub fn mem(&self) -> &Rc<MemoryFile> {
        &self.mem
    }

    /// The VMA containing `addr`.
    pub fn vma_at(&self, addr: u64) -> Option<(u64, Vma)> {
        let (&start, &vma) = self.vmas.range(..=addr).next_back()?;
        (addr < vma.end).then_some((start, vma))
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        if let Some((_, v)) = self.vmas.range(..end).next_back() {
            if v.end > start {
                return true;
            }
        }
        false
    }

    /// Splits the VMA containing `addr` (if any) so that a VMA starts exactly at `addr`.
    fn split_at(&mut self, addr: u64) {
        if let Some((start, vma)) = self.vma_at(addr) {
            if start < addr {
                self.vmas.insert(start, Vma { end: addr, ..vma });
                self.vmas.insert(addr, vma);
            }
        }
    }

    fn check_range(addr: u64, len: u64) -> Result<u64, Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(EINVAL);
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(EINVAL)?;
        if end > USER_TOP {
            return Err(EINVAL);
        }
        Ok(end)
    }

    /// Adds a VMA over `[start, end)`, which must be free.
    pub fn add_vma(
        &mut self,
        start: u64,
        end: u64,
        access: Access,
        kind: VmaKind,
    ) -> Result<(), Errno> {
        if start >= end || start < USER_BOTTOM || end > USER_TOP || self.overlaps(start, end) {
            return Err(EEXIST);
        }
        self.vmas.insert(
            start,
            Vma {
                end,
                access,
                kind,
                may_write: true,
            },
        );
        Ok(())
    }

    /// The app is about to change `[start, end)`: patched syscall sites whose trampolines are
    /// there get their code back first ([`crate::patch::unpatch_range`]).
    fn before_change(&mut self, start: u64, end: u64) {
        if self
            .syscall_pages
            .iter()
            .any(|&(page, _)| page < end && page + PAGE_SIZE > start)
        {
            crate::patch::unpatch_range(self, start, end);
        }
    }

    /// Removes everything in `[start, end)`: VMAs, pages (freed), platform mappings.
    fn remove_range(&mut self, start: u64, end: u64) {
        self.before_change(start, end);
        self.split_at(start);
        self.split_at(end);
        let starts: Vec<u64> = self.vmas.range(start..end).map(|(&s, _)| s).collect();
        for s in starts {
            self.vmas.remove(&s);
        }
        self.drop_pages(start, end);
    }

    /// Frees the pages in `[start, end)` and unmaps them; the VMAs stay (they read as zero).
    fn drop_pages(&mut self, start: u64, end: u64) {
        let pages: Vec<(u64, u64)> = self
            .pages
            .range(start..end)
            .map(|(&a, &o)| (a, o))
            .collect();
        if pages.is_empty() {
            return;
        }
        for &(a, off) in &pages {
            self.pages.remove(&a);
            self.cow.remove(&a);
            self.mem.free_page(off);
        }
        self.space.unmap(start, end - start);
    }

    /// Finds a free range of `len` bytes, top-down below `MMAP_TOP`.
    fn find_free(&self, len: u64) -> Option<u64> {
        let mut top = MMAP_TOP;
        for (&start, vma) in self.vmas.range(..MMAP_TOP).rev() {
            if vma.end <= top && top - vma.end >= len {
                return Some(top - len);
            }
            top = top.min(start);
        }
        (top >= USER_BOTTOM + len).then(|| top - len)
    }

    /// The highest free, page-aligned range of `len` bytes that ends at or below `below` and
    /// starts at or above `lowest` (for trampolines, which must be near the code they serve).
    pub fn find_free_below(&self, below: u64, len: u64, lowest: u64) -> Option<u64> {
        let lowest = lowest.max(USER_BOTTOM);
        let mut top = page_down(below);
        for (&start, vma) in self.vmas.range(..top).rev() {
            if vma.end <= top && top - vma.end >= len {
                return (top - len >= lowest).then(|| top - len);
            }
            top = top.min(start);
            if top < lowest + len {
                return None;
            }
        }
        (top >= lowest + len).then(|| top - len)
    }

    /// `mmap` of anonymous memory. `fixed` replaces what is there; `noreplace` fails with
    /// EEXIST instead; otherwise `hint` is used when free.
    pub fn mmap_anon(
        &mut self,
        hint: u64,
        len: u64,
        access: Access,
        fixed: bool,
        noreplace: bool,
    ) -> Result<u64, Errno> {
        self.map_anon(hint, len, access, (fixed, noreplace), VmaKind::Anon)
    }

    /// `mmap` of shared anonymous memory ([`VmaKind::SharedAnon`]), placed as by
    /// [`Self::mmap_anon`].
    pub fn mmap_shared_anon(
        &mut self,
        hint: u64,
        len: u64,
        access: Access,
        fixed: bool,
        noreplace: bool,
    ) -> Result<u64, Errno> {
        self.map_anon(hint, len, access, (fixed, noreplace), VmaKind::SharedAnon)
    }

    fn map_anon(
        &mut self,
        hint: u64,
        len: u64,
        access: Access,
        (fixed, noreplace): (bool, bool),
        kind: VmaKind,
    ) -> Result<u64, Errno> {
        let len = page_up(len)
            .filter(|&l| l != 0 && l <= USER_TOP)
            .ok_or(if len == 0 { EINVAL } else { ENOMEM })?;
        let addr = self.place(hint, len, fixed, noreplace)?;
        self.add_vma(addr, addr + len, access, kind)?;
        Ok(addr)
    }

    /// Where `mmap` puts `len` (page-rounded) bytes: at `hint` with `MAP_FIXED` (what was
    /// there is unmapped) or `MAP_FIXED_NOREPLACE` (EEXIST if taken), else at `hint` if it is
    /// free, else the highest free range.
    fn place(&mut self, hint: u64, len: u64, fixed: bool, noreplace: bool) -> Result<u64, Errno> {
        Ok(if fixed || noreplace {
            let end = Self::check_range(hint, len)?;
            if hint < USER_BOTTOM {
                return Err(EPERM_MMAP);
            }
            if self.overlaps(hint, end) {
                if noreplace {
                    return Err(EEXIST);
                }
                self.remove_range(hint, end);
            }
            hint
        } else {
            let h = page_down(hint);
            match h.checked_add(len) {
                Some(end) if h >= USER_BOTTOM && end <= USER_TOP && !self.overlaps(h, end) => h,
                _ => self.find_free(len).ok_or(ENOMEM)?,
            }
        })
    }

    /// `mmap(MAP_SHARED)` of `len` bytes (page-rounded) of a file, placed as
    /// [`Self::mmap_anon`] places memory: `frames(n)` gives the file's pages for the first of
    /// the `n` pages of the mapping (asked once the place is known; each gains this owner),
    /// those within the file; the rest, past its end, are shared memory of the mapping's own
    /// (Linux raises SIGBUS there).
    pub fn mmap_frames(
        &mut self,
        hint: u64,
        len: u64,
        frames: impl FnOnce(u64) -> Result<Vec<u64>, Errno>,
        access: Access,
        (fixed, noreplace): (bool, bool),
    ) -> Result<u64, Errno> {
        let len = page_up(len)
            .filter(|&l| l != 0 && l <= USER_TOP)
            .ok_or(ENOMEM)?;
        let addr = self.place(hint, len, fixed, noreplace)?;
        let frames = frames(len / PAGE_SIZE)?;
        self.add_vma(addr, addr + len, access, VmaKind::SharedAnon)?;
        self.attach_frames(addr, addr + len, &frames, access)
    }

    /// The program image's VMAs and the (app page, frame) pairs the loader filled, for the
    /// image cache.
    pub fn image_pages(&self) -> (VmaList, PageList) {
        let vmas: VmaList = self
            .vmas
            .iter()
            .filter(|(_, v)| v.kind == VmaKind::Image)
            .map(|(&s, v)| (s, v.end, v.access))
            .collect();
        let pages = vmas
            .iter()
            .flat_map(|&(s, e, _)| self.pages.range(s..e).map(|(&a, &o)| (a, o)))
            .collect();
        (vmas, pages)
    }

    /// Another owner (the image cache) now holds these frames too: writable pages are shown
    /// read-only until a write copies them.
    pub fn now_shared(&mut self, pages: &[(u64, u64)]) -> Result<(), Errno> {
        let mut show = Vec::new();
        for &(va, off) in pages {
            if let Some((_, v)) = self.vma_at(va) {
                if v.access.write {
                    let shown = self.shown(va, off, v.access);
                    show.push((va, off, shown));
                }
            }
        }
        map_runs(&mut self.space, &show)
    }

    /// Builds a program image (into an empty address space) from frames the image cache
    /// holds: its VMAs, and every page shared, writable ones copy-on-write.
    pub fn adopt_image(
        &mut self,
        vmas: &[(u64, u64, Access)],
        pages: &[(u64, u64)],
    ) -> Result<(), Errno> {
        for &(s, e, access) in vmas {
            self.add_vma(s, e, access, VmaKind::Image)?;
        }
        let mut show = Vec::with_capacity(pages.len());
        for &(va, off) in pages {
            let (_, v) = self.vma_at(va).ok_or(EINVAL)?;
            self.mem.share_page(off);
            self.pages.insert(va, off);
            let shown = self.shown(va, off, v.access);
            show.push((va, off, shown));
        }
        map_runs(&mut self.space, &show)
    }

    /// Whether `page` lies in shared anonymous memory (its frame is never copied on write).
    fn in_shared_vma(&self, page: u64) -> bool {
        matches!(self.vma_at(page), Some((_, v)) if v.kind == VmaKind::SharedAnon)
    }

    /// Where the word at `addr` lives when it is in shared anonymous memory (its frame stays
    /// the same in every process that shares it): the memory-file offset of the word, the
    /// key of a shared futex. None for private memory (keyed by address space and address).
    /// The page is populated if it was not yet (a futex on untouched memory reads zero).
    pub fn shared_word(&mut self, addr: u64) -> Result<Option<u64>, Errno> {
        let page = addr & !(PAGE_SIZE - 1);
        let Some((_, vma)) = self.vma_at(addr) else {
            return Err(crate::errno::EFAULT);
        };
        if vma.kind != VmaKind::SharedAnon {
            return Ok(None);
        }
        let off = self
            .populate(page, vma.access)
            .map_err(|_| crate::errno::EFAULT)?;
        Ok(Some(off + (addr - page)))
    }

    /// Maps `frames` (owned elsewhere: each gains this owner) as shared memory at `addr`
    /// (which must be free), or where `mmap` would put it (None): where (System V `shmat`).
    pub fn map_frames(
        &mut self,
        addr: Option<u64>,
        frames: &[u64],
        access: Access,
    ) -> Result<u64, Errno> {
        let len = frames.len() as u64 * PAGE_SIZE;
        let start = match addr {
            Some(a) => {
                let end = Self::check_range(a, len)?;
                if a < USER_BOTTOM || self.overlaps(a, end) {
                    return Err(EINVAL);
                }
                a
            }
            None => self.find_free(len).ok_or(ENOMEM)?,
        };
        self.add_vma(start, start + len, access, VmaKind::SharedAnon)?;
        self.attach_frames(start, start + len, frames, access)
    }

    /// Puts `frames` (each gains this owner) at the first pages of the fresh shared VMA
    /// `start..end`, and shows them; the VMA goes again if the platform cannot show them.
    fn attach_frames(
        &mut self,
        start: u64,
        end: u64,
        frames: &[u64],
        access: Access,
    ) -> Result<u64, Errno> {
        let mut show = Vec::with_capacity(frames.len());
        for (i, &off) in frames.iter().enumerate() {
            let va = start + i as u64 * PAGE_SIZE;
            self.mem.share_page(off);
            self.pages.insert(va, off);
            if access.any() {
                show.push((va, off, access));
            }
        }
        if map_runs(&mut self.space, &show).is_err() {
            self.remove_range(start, end);
            return Err(ENOMEM);
        }
        Ok(start)
    }

    /// The frame behind the app page at `addr`, if it has one.
    pub fn frame_at(&self, addr: u64) -> Option<u64> {
        self.pages.get(&page_down(addr)).copied()
    }

    /// The mapping at `[addr, addr + len)` (just made by `mmap`) may never gain write access
    /// through `mprotect`.
    pub fn deny_write(&mut self, addr: u64, len: u64) {
        let Some(end) = page_up(len).and_then(|l| addr.checked_add(l)) else {
            return;
        };
        self.split_at(addr);
        self.split_at(end);
        for (_, v) in self.vmas.range_mut(addr..end) {
            v.may_write = false;
        }
    }

    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = Self::check_range(addr, len)?;
        self.remove_range(addr, end);
        Ok(())
    }

    pub fn mprotect(&mut self, addr: u64, len: u64, access: Access) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let end = Self::check_range(addr, len).map_err(|_| ENOMEM)?;
        // Every page must be mapped (Linux: ENOMEM otherwise), and may take the rights
        // (EACCES: write to a mapping that can never be written), checked before changing
        // anything.
        let mut cur = addr;
        while cur < end {
            let (_, v) = self.vma_at(cur).ok_or(ENOMEM)?;
            if access.write && !v.may_write {
                return Err(EACCES);
            }
            cur = v.end;
        }
        self.before_change(addr, end);
        self.split_at(addr);
        self.split_at(end);
        for (_, v) in self.vmas.range_mut(addr..end) {
            v.access = access;
        }
        // Re-show touched pages with the new rights.
        let pages: Vec<(u64, u64)> = self.pages.range(addr..end).map(|(&a, &o)| (a, o)).collect();
        for (a, off) in pages {
            if access.any() {
                let shown = self.shown(a, off, access);
                self.space.map_file(a, off, PAGE_SIZE, shown)?;
            } else {
                self.space.unmap(a, PAGE_SIZE);
            }
        }
        Ok(())
    }

    /// `mremap(old, old_len, new_len)`: shrinks in place, grows in place when the space after
    /// the mapping is free, else moves it (with `may_move`, to `fixed` if given) — moving
    /// re-keys the pages to their new addresses, copying no data. Returns the new address.
    pub fn mremap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed: Option<u64>,
    ) -> Result<u64, Errno> {
        if !old.is_multiple_of(PAGE_SIZE) || new_len == 0 || old_len == 0 {
            return Err(EINVAL);
        }
        let old_end = Self::check_range(old, old_len)?;
        let new_len = page_up(new_len).filter(|&l| l <= USER_TOP).ok_or(ENOMEM)?;
        let old_len = old_end - old;
        // The old range must lie in one VMA.
        let (_, vma) = self.vma_at(old).ok_or(EFAULT)?;
        if vma.end < old_end {
            return Err(EFAULT);
        }
        if let Some(dest) = fixed {
            let dest_end = Self::check_range(dest, new_len)?;
            if dest < USER_BOTTOM {
                return Err(EPERM_MMAP);
            }
            if dest < old_end && old < dest_end {
                return Err(EINVAL);
            }
            self.remove_range(dest, dest_end);
            self.move_range(old, old_len, new_len, dest, vma);
            return Ok(dest);
        }
        if new_len <= old_len {
            self.remove_range(old + new_len, old_end);
            return Ok(old);
        }
        let grow_end = old + new_len;
        if vma.end == old_end && grow_end <= USER_TOP && !self.overlaps(old_end, grow_end) {
            self.split_at(old);
            if let Some(v) = self.vmas.get_mut(&old) {
                v.end = grow_end;
                if v.kind == VmaKind::Brk {
                    v.kind = VmaKind::Anon;
                }
            }
            return Ok(old);
        }
        if !may_move {
            return Err(ENOMEM);
        }
        let dest = self.find_free(new_len).ok_or(ENOMEM)?;
        self.move_range(old, old_len, new_len, dest, vma);
        Ok(dest)
    }

    /// Moves `[old, old + old_len)` (inside `vma`) to a free `[dest, dest + new_len)`: the
    /// VMA goes (as anonymous memory: a moved break area is no longer the break), the pages
    /// keep their frames, shown at their new addresses; a shrinking move drops the tail.
    fn move_range(&mut self, old: u64, old_len: u64, new_len: u64, dest: u64, vma: Vma) {
        self.before_change(old, old + old_len);
        let keep = old_len.min(new_len);
        self.split_at(old);
        self.split_at(old + old_len);
        let starts: Vec<u64> = self
            .vmas
            .range(old..old + old_len)
            .map(|(&s, _)| s)
            .collect();
        for s in starts {
            self.vmas.remove(&s);
        }
        // The new VMA first: `shown` looks up the kind of each moved page's VMA.
        self.vmas.insert(
            dest,
            Vma {
                end: dest + new_len,
                access: vma.access,
                kind: if vma.kind == VmaKind::SharedAnon {
                    VmaKind::SharedAnon
                } else {
                    VmaKind::Anon
                },
                may_write: vma.may_write,
            },
        );
        let moved: Vec<(u64, u64)> = self
            .pages
            .range(old..old + old_len)
            .map(|(&a, &o)| (a, o))
            .collect();
        let mut show = Vec::with_capacity(moved.len());
        for (va, off) in moved {
            self.pages.remove(&va);
            let was_cow = self.cow.remove(&va);
            if va - old >= keep {
                self.mem.free_page(off);
                continue;
            }
            let nva = dest + (va - old);
            self.pages.insert(nva, off);
            if was_cow {
                self.cow.insert(nva);
            }
            let shown = self.shown(nva, off, vma.access);
            show.push((nva, off, shown));
        }
        self.space.unmap(old, old_len);
        // A platform that cannot show them now faults them in again: the records stand.
        let _ = map_runs(&mut self.space, &show);
    }

    /// `madvise(MADV_DONTNEED)`: touched pages in the range are dropped and read back as zero.
    pub fn discard(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = Self::check_range(addr, len)?;
        let mut cur = addr;
        let mut ranges = Vec::new();
        while cur < end {
            let (_, v) = self.vma_at(cur).ok_or(ENOMEM)?;
            // Shared memory keeps its contents (Linux drops only this process's mapping of
            // it; the next touch shows the same data).
            if v.kind != VmaKind::SharedAnon {
                ranges.push((cur, v.end.min(end)));
            }
            cur = v.end;
        }
        for (s, e) in ranges {
            self.before_change(s, e);
            self.drop_pages(s, e);
        }
        Ok(())
    }

    /// Sets the program break's start (after the image) — called once by the loader.
    pub fn init_brk(&mut self, start: u64) {
        self.brk_start = start;
        self.brk = start;
    }

    /// `brk`: moves the break if possible and returns the (possibly unchanged) break.
    pub fn brk(&mut self, new: u64) -> u64 {
        if new < self.brk_start || new > MMAP_TOP {
            return self.brk;
        }
        let (old_end, new_end) = match (page_up(self.brk), page_up(new)) {
            (Some(o), Some(n)) => (o, n),
            _ => return self.brk,
        };
        if new_end > old_end {
            if self.overlaps(old_end, new_end) {
                return self.brk;
            }
            // Extend the heap VMA (or start it).
            // (The heap's last page, if the heap has any: `old_end > brk_start >= 0`.)
            let last = (old_end > self.brk_start).then(|| self.vma_at(old_end - 1));
            match last.flatten() {
                Some((s, v)) if v.kind == VmaKind::Brk => {
                    self.vmas.insert(s, Vma { end: new_end, ..v });
                }
                _ => {
                    if self
                        .add_vma(old_end, new_end, Access::RW, VmaKind::Brk)
                        .is_err()
                    {
                        return self.brk;
                    }
                }
            }
        } else if new_end < old_end {
            self.remove_range(new_end, old_end);
        }
        self.brk = new;
        self.brk
    }

    /// Makes sure the page at `page` is backed and shown with its VMA's rights; returns its
    /// memory-file offset.
    fn populate(&mut self, page: u64, access: Access) -> Result<u64, Segv> {
        if let Some(&off) = self.pages.get(&page) {
            return Ok(off);
        }
        let off = self.mem.alloc_page().map_err(|_| Segv::Oom)?;
        self.pages.insert(page, off);
        if self.space.map_file(page, off, PAGE_SIZE, access).is_err() {
            self.pages.remove(&page);
            self.mem.free_page(off);
            return Err(Segv::Oom);
        }
        Ok(off)
    }

    /// A small accessible mapping (at most the fault-around size, typically a malloc'd buffer)
    /// is populated right away: the memory reads as zero either way, and the app's first touch
    /// then costs no fault — on the fallbacks a round trip to the Sentry, here folded into the
    /// `mmap`'s own return. Failure is harmless (the touch faults as usual).
    pub fn prefault_small(&mut self, addr: u64, len: u64) {
        if len == 0 || len > FAULT_AROUND * PAGE_SIZE {
            return;
        }
        if let Some((_, vma)) = self.vma_at(addr) {
            if vma.access.any() && !self.pages.contains_key(&page_down(addr)) {
                let _ = self.populate_around(page_down(addr), vma);
            }
        }
    }

    /// Resolves an app page fault: populates the page if `access` is allowed there.
    ///
    /// `access` may be [`Access::NONE`] when the platform cannot tell the kind of access (ptrace):
    /// then a fault on a page already shown with its VMA's full rights is a rights violation.
    pub fn handle_fault(&mut self, addr: u64, access: Access) -> Result<(), Segv> {
        let (_, vma) = self.vma_at(addr).ok_or(Segv::MapErr)?;
        let page = page_down(addr);
        if access == Access::NONE {
            if !vma.access.any() {
                return Err(Segv::AccErr);
            }
            if self.pages.contains_key(&page) {
                // Shown readable, so this was a write (or an execute, which faults again
                // after the copy and is then refused).
                if vma.access.write && self.cow.contains(&page) {
                    return self.break_cow_around(page, vma);
                }
                return Err(Segv::AccErr);
            }
            return self.populate_around(page, vma);
        }
        if !vma.access.allows(access) {
            return Err(Segv::AccErr);
        }
        if let Some(&off) = self.pages.get(&page) {
            if access.write && self.cow.contains(&page) {
                return self.break_cow_around(page, vma);
            }
            // Present in our records but the platform faulted: re-show it (e.g. a platform
            // that dropped the mapping). Rights were checked above.
            let shown = self.shown(page, off, vma.access);
            self.space
                .map_file(page, off, PAGE_SIZE, shown)
                .map_err(|_| Segv::Oom)?;
            return Ok(());
        }
        self.populate_around(page, vma)
    }

    /// The rights to show `page` (backed by `off`) with under a VMA granting `access`: without
    /// write while the frame is shared. Keeps the copy-on-write set in step.
    fn shown(&mut self, page: u64, off: u64, access: Access) -> Access {
        if access.write && self.mem.is_shared(off) && !self.in_shared_vma(page) {
            self.cow.insert(page);
            read_only(access)
        } else {
            self.cow.remove(&page);
            access
        }
    }

    /// Makes `page` privately writable: copies its frame if another address space still
    /// shares it, then shows it with the VMA's rights. Returns the (possibly new) frame.
    fn break_cow(&mut self, page: u64, access: Access) -> Result<u64, Segv> {
        let old = *self.pages.get(&page).expect("present page");
        let off = if self.mem.is_shared(old) {
            let new = self.mem.alloc_page().map_err(|_| Segv::Oom)?;
            self.mem.copy_page(old, new);
            self.mem.free_page(old);
            self.pages.insert(page, new);
            new
        } else {
            old
        };
        self.cow.remove(&page);
        self.space
            .map_file(page, off, PAGE_SIZE, access)
            .map_err(|_| Segv::Oom)?;
        Ok(off)
    }

    /// A write fault on a copy-on-write page: breaks it, and re-shows writable up to
    /// `FAULT_AROUND - 1` following copy-on-write pages whose frames nobody else holds any
    /// more (the usual case after the child of a `fork` exec'd), in as few platform calls as
    /// the file layout allows — each would otherwise be a fault of its own.
    fn break_cow_around(&mut self, page: u64, vma: Vma) -> Result<(), Segv> {
        self.break_cow(page, vma.access)?;
        let mut runs = Vec::new();
        let mut va = page + PAGE_SIZE;
        while va < vma.end && (va - page) / PAGE_SIZE < FAULT_AROUND && self.cow.contains(&va) {
            let off = self.pages[&va];
            if self.mem.is_shared(off) {
                break;
            }
            self.cow.remove(&va);
            runs.push((va, off, vma.access));
            va += PAGE_SIZE;
        }
        map_runs(&mut self.space, &runs).map_err(|_| Segv::Oom)
    }

    /// Populates `page` and up to `FAULT_AROUND - 1` untouched pages after it in the same VMA,
    /// showing runs that are contiguous in the memory file with one platform call: on the
    /// fallbacks every fault and every mapping is a round trip to the stub.
    fn populate_around(&mut self, page: u64, vma: Vma) -> Result<(), Segv> {
        let mut pages = Vec::new();
        let mut va = page;
        while va < vma.end
            && (va - page) / PAGE_SIZE < FAULT_AROUND
            && !self.pages.contains_key(&va)
        {
            match self.mem.alloc_page() {
                Ok(off) => pages.push((va, off)),
                Err(_) if va == page => return Err(Segv::Oom),
                Err(_) => break,
            }
            va += PAGE_SIZE;
        }
        let mut i = 0;
        while i < pages.len() {
            let (start, off) = pages[i];
            let mut n = 1;
            while i + n < pages.len() && pages[i + n].1 == off + n as u64 * PAGE_SIZE {
                n += 1;
            }
            if self
                .space
                .map_file(start, off, n as u64 * PAGE_SIZE, vma.access)
                .is_err()
            {
                for &(_, o) in &pages[i..] {
                    self.mem.free_page(o);
                }
                return if i == 0 { Err(Segv::Oom) } else { Ok(()) };
            }
            for &(v, o) in &pages[i..i + n] {
                self.pages.insert(v, o);
            }
            i += n;
        }
        Ok(())
    }

    /// Visits the memory-file ranges backing `[addr, addr + len)`, populating pages, after
    /// checking every page allows `want`. Fails with EFAULT without visiting anything if any
    /// page does not.
    fn for_each_chunk(
        &mut self,
        addr: u64,
        len: u64,
        want: Access,
        writing: bool,
        mut f: impl FnMut(u64, u64, u64),
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).ok_or(EFAULT)?;
        if addr < USER_BOTTOM || end > USER_TOP {
            return Err(EFAULT);
        }
        let mut cur = addr;
        while cur < end {
            let (_, v) = self.vma_at(cur).ok_or(EFAULT)?;
            if !v.access.allows(want) {
                return Err(EFAULT);
            }
            cur = v.end;
        }
        let mut done = 0;
        // Pages populated here are shown to the app at the end, runs merged: the loader filling
        // a 2 MB image, or a large read into fresh memory, would otherwise cost a platform call
        // (on the fallbacks a stub mmap) per page. The Sentry writes them through its own
        // mapping meanwhile.
        let mut fresh = Vec::new();
        let r = self.visit_chunks(addr, end, writing, &mut fresh, &mut done, &mut f);
        let _ = map_runs(&mut self.space, &fresh);
        r
    }

    fn visit_chunks(
        &mut self,
        addr: u64,
        end: u64,
        writing: bool,
        fresh: &mut Vec<(u64, u64, Access)>,
        done: &mut u64,
        f: &mut impl FnMut(u64, u64, u64),
    ) -> Result<(), Errno> {
        let mut cur = addr;
        while cur < end {
            let page = page_down(cur);
            let (_, v) = self.vma_at(cur).ok_or(EFAULT)?;
            let mut off = match self.pages.get(&page) {
                Some(&off) => off,
                None => {
                    let off = self.mem.alloc_page().map_err(|_| EFAULT)?;
                    self.pages.insert(page, off);
                    fresh.push((page, off, v.access));
                    off
                }
            };
            if writing
                && v.kind != VmaKind::SharedAnon
                && (self.cow.contains(&page) || self.mem.is_shared(off))
            {
                off = self.break_cow(page, v.access).map_err(|_| EFAULT)?;
            }
            let in_page = cur - page;
            let n = (PAGE_SIZE - in_page).min(end - cur);
            f(off + in_page, n, *done);
            *done += n;
            cur += n;
        }
        Ok(())
    }

    /// Copies app memory at `addr` into `out`.
    pub fn copy_in(&mut self, addr: u64, out: &mut [u8]) -> Result<(), Errno> {
        let mem = self.mem.clone();
        self.for_each_chunk(addr, out.len() as u64, Access::R, false, |off, n, done| {
            mem.read(off, &mut out[done as usize..(done + n) as usize])
        })
    }

    /// Copies `data` into app memory at `addr`.
    pub fn copy_out(&mut self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let mem = self.mem.clone();
        self.for_each_chunk(addr, data.len() as u64, Access::RW, true, |off, n, done| {
            mem.write(off, &data[done as usize..(done + n) as usize])
        })
    }

    /// Reads a Linux ABI structure (or plain integer) from app memory at `addr`; EFAULT as
    /// [`Mm::copy_in`] for a bad pointer.
    pub fn read_obj<T: FromBytes + IntoBytes>(&mut self, addr: u64) -> Result<T, Errno> {
        let mut v = T::new_zeroed();
        self.copy_in(addr, v.as_mut_bytes())?;
        Ok(v)
    }

    /// Reads an array of `n` ABI structures from app memory at `addr` (an `iovec` or `pollfd`
    /// list); EFAULT as [`Mm::copy_in`] for a bad pointer.
    pub fn read_objs<T: FromBytes + IntoBytes + Clone>(
        &mut self,
        addr: u64,
        n: usize,
    ) -> Result<Vec<T>, Errno> {
        let mut v = alloc::vec![T::new_zeroed(); n];
        self.copy_in(addr, v.as_mut_slice().as_mut_bytes())?;
        Ok(v)
    }

    /// Writes a Linux ABI structure (or plain integer, or a slice of them) to app memory at
    /// `addr`; EFAULT as [`Mm::copy_out`] for a bad pointer.
    pub fn write_obj<T: IntoBytes + Immutable + ?Sized>(
        &mut self,
        addr: u64,
        v: &T,
    ) -> Result<(), Errno> {
        self.copy_out(addr, v.as_bytes())
    }

    /// Zeroes app memory (used by the loader for partial pages).
    pub fn zero_out(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        let mem = self.mem.clone();
        self.for_each_chunk(addr, len, Access::NONE, true, |off, n, _| mem.zero(off, n))
    }

    /// Copies `data` to app memory regardless of the VMA's write right (the loader filling a
    /// read-only segment).
    pub fn load(&mut self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let mem = self.mem.clone();
        self.for_each_chunk(
            addr,
            data.len() as u64,
            Access::NONE,
            true,
            |off, n, done| mem.write(off, &data[done as usize..(done + n) as usize]),
        )
    }

    /// Sentry-visible ranges backing `[addr, addr + len)` for host I/O (zero copy), merged
    /// where contiguous. `write` = the host will write into them (a read syscall).
    pub fn io_bufs(
        &mut self,
        addr: u64,
        len: u64,
        write: bool,
        out: &mut Vec<Buf>,
    ) -> Result<(), Errno> {
        let mem = self.mem.clone();
        let want = if write { Access::RW } else { Access::R };
        self.for_each_chunk(addr, len, want, write, |off, n, _| {
            let b = mem.buf(off, n);
            match out.last_mut() {
                Some(last) if last.addr + last.len == b.addr => last.len += n,
                _ => out.push(b),
            }
        })
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    pub fn read_cstr(&mut self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        // Small steps (never across a page end, where the next page may be unmapped): paths
        // are mostly short, and copying up to the page end each time cost more than the rest
        // of a `stat`.
        const STEP: u64 = 256;
        let mut out = Vec::new();
        let mut cur = addr;
        let mut chunk = [0u8; STEP as usize];
        loop {
            let n = (PAGE_SIZE - (cur % PAGE_SIZE)).min(STEP) as usize;
            self.copy_in(cur, &mut chunk[..n])?;
            if let Some(i) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..i]);
                if out.len() > max {
                    return Err(crate::errno::ENAMETOOLONG);
                }
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
            if out.len() > max {
                return Err(crate::errno::ENAMETOOLONG);
            }
            cur += n as u64;
        }
    }

    pub fn read_u64(&mut self, addr: u64) -> Result<u64, Errno> {
        self.read_obj(addr)
    }

    /// The VMAs in address order (for `/proc/self/maps`).
    pub fn vmas(&self) -> impl Iterator<Item = (u64, Vma)> + '_ {
        self.vmas.iter().map(|(&s, &v)| (s, v))
    }

    /// Touched pages (resident set).
    pub fn resident_pages(&self) -> usize {
        self.pages.len()
    }

    /// Number of VMAs (for tests and /proc later).
    pub fn vma_count(&self) -> usize {
        self.vmas.len()
    }

    /// Releases every page (the address space is going away).
    pub fn release(&mut self) {
        for (_, off) in core::mem::take(&mut self.pages) {
            self.mem.free_page(off);
        }
        self.cow.clear();
        self.vmas.clear();
    }
}

/// `mmap` below `mmap_min_addr` with MAP_FIXED: Linux says EPERM.
const EPERM_MMAP: Errno = crate::errno::EPERM;

impl<S: AddressSpace> Mm<S> {
    /// A copy of this address space in `space` (for `fork`), copy-on-write: the child gets
    /// every VMA and shares every touched frame; pages of writable VMAs are shown read-only on
    /// both sides until one writes.
    pub fn fork_into(&mut self, space: S) -> Result<Mm<S>, Errno> {
        // Shared memory must be backed before it is shared: a page first touched after the
        // fork must be the same frame on both sides.
        let shared: Vec<(u64, Vma)> = self
            .vmas
            .iter()
            .filter(|(_, v)| v.kind == VmaKind::SharedAnon && v.access.any())
            .map(|(&s, &v)| (s, v))
            .collect();
        for (start, vma) in shared {
            let mut va = start;
            while va < vma.end {
                if !self.pages.contains_key(&va) {
                    self.populate(va, vma.access).map_err(|_| ENOMEM)?;
                }
                va += PAGE_SIZE;
            }
        }
        let mut child = Mm {
            space,
            mem: self.mem.clone(),
            vmas: self.vmas.clone(),
            pages: self.pages.clone(),
            cow: BTreeSet::new(),
            brk_start: self.brk_start,
            brk: self.brk,
            syscall_pages: self.syscall_pages.clone(),
        };
        let mut child_map = Vec::with_capacity(self.pages.len());
        let mut parent_remap = Vec::new();
        for (&va, &off) in &self.pages {
            self.mem.share_page(off);
            let (access, kind) = self
                .vma_at(va)
                .map(|(_, v)| (v.access, v.kind))
                .unwrap_or((Access::NONE, VmaKind::Anon));
            let shown = if access.write && kind != VmaKind::SharedAnon {
                child.cow.insert(va);
                if self.cow.insert(va) {
                    parent_remap.push((va, off, read_only(access)));
                }
                read_only(access)
            } else {
                access
            };
            child_map.push((va, off, shown));
        }
        // The parent first: once its pages are shared, none may stay writable.
        if let Err(e) = map_runs(&mut self.space, &parent_remap)
            .and_then(|()| map_runs(&mut child.space, &child_map))
        {
            child.release();
            return Err(e);
        }
        Ok(child)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[derive(Default)]
    struct FakeSpace {
        mapped: BTreeMap<u64, (u64, Access)>,
        map_calls: usize,
    }
    impl AddressSpace for FakeSpace {
        fn map_file(
            &mut self,
            addr: u64,
            offset: u64,
            len: u64,
            access: Access,
        ) -> Result<(), Errno> {
            self.map_calls += 1;
            for i in (0..len).step_by(PAGE_SIZE as usize) {
                self.mapped.insert(addr + i, (offset + i, access));
            }
            Ok(())
        }
        fn unmap(&mut self, addr: u64, len: u64) {
            let keys: Vec<u64> = self
                .mapped
                .range(addr..addr + len)
                .map(|(&k, _)| k)
                .collect();
            for k in keys {
                self.mapped.remove(&k);
            }
        }
    }

    fn mm() -> (Mm<FakeSpace>, Vec<u8>) {
        let mut backing = vec![0u8; 64 * 4096];
        // SAFETY: the Vec outlives the Mm in each test (returned alongside it).
        let mem = unsafe { MemoryFile::new(backing.as_mut_ptr() as u64, backing.len() as u64, 0) };
        (Mm::new(FakeSpace::default(), Rc::new(mem)), backing)
    }

    #[test]
    fn demand_fault_and_copy() {
        let (mut m, _b) = mm();
        let a = m.mmap_anon(0, 3 * 4096, Access::RW, false, false).unwrap();
        assert_eq!(m.space.mapped.len(), 0);
        m.handle_fault(a + 4096 + 10, Access::RW).unwrap();
        // Fault-around: the page and the rest of the VMA after it, not the page before.
        assert_eq!(m.space.mapped.len(), 2);
        assert!(!m.space.mapped.contains_key(&a));
        m.copy_out(a + 4090, b"hello world").unwrap();
        let mut out = [0u8; 11];
        m.copy_in(a + 4090, &mut out).unwrap();
        assert_eq!(&out, b"hello world");
        assert_eq!(m.handle_fault(a + 3 * 4096, Access::R), Err(Segv::MapErr));
        assert_eq!(m.copy_in(a + 3 * 4096 - 2, &mut out), Err(EFAULT));
    }

    #[test]
    fn abi_objects_in_and_out() {
        use crate::linux::{PollFd, Timespec};
        let (mut m, _b) = mm();
        let a = m.mmap_anon(0, 2 * 4096, Access::RW, false, false).unwrap();
        // Across the page boundary, byte for byte what Linux lays out.
        let ts = Timespec {
            tv_sec: 0x0102_0304_0506_0708,
            tv_nsec: -2,
        };
        m.write_obj(a + 4090, &ts).unwrap();
        let mut raw = [0u8; 16];
        m.copy_in(a + 4090, &mut raw).unwrap();
        assert_eq!(raw[..8], 0x0102_0304_0506_0708i64.to_le_bytes());
        assert_eq!(raw[8..], (-2i64).to_le_bytes());
        assert_eq!(m.read_obj::<Timespec>(a + 4090), Ok(ts));
        let fds = [
            PollFd {
                fd: 3,
                events: 1,
                revents: 0,
            },
            PollFd {
                fd: -1,
                events: 4,
                revents: 0x20,
            },
        ];
        m.write_obj(a, &fds[..]).unwrap();
        assert_eq!(m.read_objs::<PollFd>(a, 2).unwrap(), fds);
        // A bad pointer is EFAULT, as for the plain copies.
        assert_eq!(m.read_obj::<Timespec>(a + 2 * 4096 - 8), Err(EFAULT));
        assert_eq!(m.write_obj(a + 2 * 4096 - 8, &ts), Err(EFAULT));
        assert_eq!(m.read_objs::<PollFd>(a + 2 * 4096 - 8, 2), Err(EFAULT));
    }

    #[test]
    fn protect_and_unmap() {
        let (mut m, _b) = mm();
        let a = m.mmap_anon(0, 4 * 4096, Access::RW, false, false).unwrap();
        m.copy_out(a, &[1; 4 * 4096]).unwrap();
        m.mprotect(a + 4096, 4096, Access::R).unwrap();
        assert_eq!(m.vma_count(), 3);
        assert_eq!(m.copy_out(a + 4096, b"x"), Err(EFAULT));
        assert_eq!(m.handle_fault(a + 4096, Access::RW), Err(Segv::AccErr));
        assert_eq!(m.space.mapped[&(a + 4096)].1, Access::R);
        let used = m.mem().pages_in_use();
        m.munmap(a, 2 * 4096).unwrap();
        assert_eq!(m.mem().pages_in_use(), used - 2);
        assert_eq!(m.mprotect(a, 4096, Access::R), Err(ENOMEM));
        assert_eq!(m.munmap(a + 1, 4096), Err(EINVAL));
    }

    #[test]
    fn fixed_and_noreplace() {
        let (mut m, _b) = mm();
        let a = m
            .mmap_anon(0x40_0000, 2 * 4096, Access::RW, true, false)
            .unwrap();
        assert_eq!(a, 0x40_0000);
        assert_eq!(
            m.mmap_anon(0x40_1000, 4096, Access::RW, false, true),
            Err(EEXIST)
        );
        let b = m
            .mmap_anon(0x40_1000, 4096, Access::R, true, false)
            .unwrap();
        assert_eq!(b, 0x40_1000);
        assert_eq!(m.vma_at(0x40_1000).unwrap().1.access, Access::R);
        assert_eq!(m.mmap_anon(0, 0, Access::RW, false, false), Err(EINVAL));
    }

    #[test]
    fn brk_grows_and_shrinks() {
        let (mut m, _b) = mm();
        m.init_brk(0x60_0000);
        assert_eq!(m.brk(0), 0x60_0000);
        assert_eq!(m.brk(0x60_2001), 0x60_2001);
        m.copy_out(0x60_2000, b"x").unwrap();
        assert_eq!(m.brk(0x60_1000), 0x60_1000);
        assert_eq!(m.copy_out(0x60_1000, b"x"), Err(EFAULT));
        assert_eq!(m.brk(0x60_3000), 0x60_3000);
        let mut b = [9u8; 1];
        m.copy_in(0x60_2000, &mut b).unwrap();
        assert_eq!(
            b,
            [0],
            "memory given back by brk reads as zero when grown again"
        );
    }

    #[test]
    fn io_bufs_merge_contiguous_pages() {
        let (mut m, _b) = mm();
        let a = m.mmap_anon(0, 2 * 4096, Access::RW, false, false).unwrap();
        let mut v = Vec::new();
        m.io_bufs(a + 100, 5000, false, &mut v).unwrap();
        let total: u64 = v.iter().map(|b| b.len).sum();
        assert_eq!(total, 5000);
        assert_eq!(m.io_bufs(0x10, 5, false, &mut v), Err(EFAULT));
    }

    #[test]
    fn large_copies_reuse_freed_frames_in_order_and_map_them_in_one_call() {
        let (mut m, _b) = mm();
        let a = m.mmap_anon(0, 32 * 4096, Access::RW, false, false).unwrap();
        m.copy_out(a, &[7; 32 * 4096]).unwrap();
        m.munmap(a, 32 * 4096).unwrap();
        // Another image loads into freed (dirty) frames: they come back zeroed, lowest first,
        // so the whole range is one run.
        let b = m.mmap_anon(0, 32 * 4096, Access::RX, false, false).unwrap();
        let calls = m.space.map_calls;
        m.load(b + 100, &[1; 30 * 4096]).unwrap();
        assert_eq!(
            m.space.map_calls - calls,
            1,
            "one mapping for 31 fresh pages"
        );
        let offs: Vec<u64> = (0..31).map(|i| m.space.mapped[&(b + i * 4096)].0).collect();
        assert!(offs.windows(2).all(|w| w[1] == w[0] + 4096), "{offs:x?}");
        let mut head = [9u8; 100];
        m.copy_in(b, &mut head).unwrap();
        assert_eq!(head, [0u8; 100], "recycled frames are zeroed");
    }

    #[test]
    fn shared_anon_is_shared_after_fork() {
        let (mut m, _b) = mm();
        let a = m
            .mmap_shared_anon(0, 2 * 4096, Access::RW, false, false)
            .unwrap();
        let p = m.mmap_anon(0, 4096, Access::RW, false, false).unwrap();
        m.copy_out(a, b"before").unwrap();
        m.copy_out(p, b"private").unwrap();
        let mut child = m.fork_into(FakeSpace::default()).unwrap();
        // Both pages (one untouched before the fork) are the same frames, shown writable.
        assert_eq!(child.pages[&a], m.pages[&a]);
        assert_eq!(child.pages[&(a + 4096)], m.pages[&(a + 4096)]);
        assert_eq!(child.space.mapped[&a].1, Access::RW);
        assert_eq!(m.space.mapped[&(a + 4096)].1, Access::RW);
        child.copy_out(a + 4096, b"child").unwrap();
        child.copy_out(p, b"childs!").unwrap();
        let mut buf = [0u8; 5];
        m.copy_in(a + 4096, &mut buf).unwrap();
        assert_eq!(&buf, b"child");
        let mut buf = [0u8; 7];
        m.copy_in(p, &mut buf).unwrap();
        assert_eq!(&buf, b"private");
        // MADV_DONTNEED keeps shared contents; the frames are freed once, by the last owner.
        m.discard(a, 4096).unwrap();
        let mut buf = [0u8; 6];
        m.copy_in(a, &mut buf).unwrap();
        assert_eq!(&buf, b"before");
        child.release();
        m.release();
        assert_eq!(m.mem().pages_in_use(), 0);
    }

    #[test]
    fn fork_is_copy_on_write() {
        let (mut m, _b) = mm();
        let a = m.mmap_anon(0, 3 * 4096, Access::RW, false, false).unwrap();
        m.copy_out(a, b"parent").unwrap();
        m.copy_out(a + 2 * 4096, b"third").unwrap();
        let used = m.mem().pages_in_use();
        let mut child = m.fork_into(FakeSpace::default()).unwrap();
        assert_eq!(m.mem().pages_in_use(), used, "fork copies no page");
        assert_eq!(child.vma_count(), m.vma_count());
        assert_eq!(child.space.mapped.len(), 2, "touched pages only");
        for space in [&m.space, &child.space] {
            assert!(
                space.mapped.values().all(|&(_, acc)| acc == Access::R),
                "shared pages are shown read-only on both sides"
            );
        }
        let mut buf = [0u8; 6];
        child.copy_in(a, &mut buf).unwrap();
        assert_eq!(&buf, b"parent");
        // The child writes (through the Sentry): it gets its own copy of that page only.
        child.copy_out(a, b"child!").unwrap();
        assert_eq!(m.mem().pages_in_use(), used + 1);
        assert_eq!(child.space.mapped[&a].1, Access::RW);
        m.copy_in(a, &mut buf).unwrap();
        assert_eq!(&buf, b"parent", "the child's writes stay in the child");
        // The parent writes by faulting: its frame is no longer shared, so no copy.
        m.handle_fault(a + 1, Access::RW).unwrap();
        assert_eq!(m.mem().pages_in_use(), used + 1);
        assert_eq!(m.space.mapped[&a].1, Access::RW);
        // The third page is still shared: a fault in the parent copies it.
        m.handle_fault(a + 2 * 4096, Access::RW).unwrap();
        assert_eq!(m.mem().pages_in_use(), used + 2);
        m.copy_out(a + 2 * 4096, b"THIRD").unwrap();
        let mut t = [0u8; 5];
        child.copy_in(a + 2 * 4096, &mut t).unwrap();
        assert_eq!(&t, b"third");
        child.release();
        assert_eq!(
            m.mem().pages_in_use(),
            used,
            "the child's two copies go with it"
        );
        m.release();
        assert_eq!(
            m.mem().pages_in_use(),
            0,
            "every frame is freed exactly once"
        );
    }

    #[test]
    fn cow_after_child_exit_reshows_runs_without_copying() {
        let (mut m, _b) = mm();
        let a = m.mmap_anon(0, 8 * 4096, Access::RW, false, false).unwrap();
        m.handle_fault(a, Access::RW).unwrap();
        let used = m.mem().pages_in_use();
        let mut child = m.fork_into(FakeSpace::default()).unwrap();
        child.release();
        drop(child);
        m.handle_fault(a + 4096, Access::RW).unwrap();
        assert_eq!(
            m.mem().pages_in_use(),
            used,
            "nothing is shared any more: no copies"
        );
        assert!(
            m.space
                .mapped
                .range(a + 4096..)
                .all(|(_, &(_, acc))| acc == Access::RW),
            "the following pages are re-shown writable by the same fault"
        );
        // ptrace cannot tell the access kind: a fault on a present copy-on-write page is a
        // write; a second one on the now writable page is a violation.
        let mut child = m.fork_into(FakeSpace::default()).unwrap();
        assert_eq!(m.handle_fault(a, Access::NONE), Ok(()));
        assert_eq!(m.handle_fault(a, Access::NONE), Err(Segv::AccErr));
        child.release();
    }

    #[test]
    fn deny_write_refuses_mprotect_write_and_survives_splits_and_fork() {
        let (mut m, _b) = mm();
        let a = m.mmap_anon(0, 3 * 4096, Access::R, false, false).unwrap();
        m.deny_write(a + 4096, 4096);
        // Read-only and no-access changes are fine; write anywhere in the range is refused,
        // before anything changes.
        m.mprotect(a + 4096, 4096, Access::NONE).unwrap();
        assert_eq!(m.mprotect(a, 3 * 4096, Access::RW), Err(EACCES));
        assert_eq!(m.vma_at(a).unwrap().1.access, Access::R, "nothing changed");
        m.mprotect(a, 4096, Access::RW).unwrap();
        m.mprotect(a + 2 * 4096, 4096, Access::RW).unwrap();
        let mut child = m.fork_into(FakeSpace::default()).unwrap();
        assert_eq!(child.mprotect(a + 4096, 4096, Access::RW), Err(EACCES));
        child.release();
    }

    #[test]
    fn cow_survives_mprotect_and_read_only_vmas() {
        let (mut m, _b) = mm();
        let a = m.mmap_anon(0, 2 * 4096, Access::RW, false, false).unwrap();
        m.copy_out(a, b"x").unwrap();
        let mut child = m.fork_into(FakeSpace::default()).unwrap();
        m.mprotect(a, 4096, Access::R).unwrap();
        m.mprotect(a, 4096, Access::RW).unwrap();
        assert_eq!(
            m.space.mapped[&a].1,
            Access::R,
            "a shared frame never becomes writable through mprotect"
        );
        m.copy_out(a, b"y").unwrap();
        let mut c = [0u8; 1];
        child.copy_in(a, &mut c).unwrap();
        assert_eq!(&c, b"x");
        child.release();
    }

    #[test]
    fn mremap_grows_shrinks_and_moves_without_copying() {
        let (mut m, _b) = mm();
        let a = m.mmap_anon(0, 2 * 4096, Access::RW, false, false).unwrap();
        m.copy_out(a, b"first").unwrap();
        m.copy_out(a + 4096, b"second").unwrap();
        // Something right after it: growing must move.
        let blocker = m
            .mmap_anon(a + 2 * 4096, 4096, Access::R, true, false)
            .unwrap();
        assert_eq!(m.mremap(a, 2 * 4096, 4 * 4096, false, None), Err(ENOMEM));
        let used = m.mem().pages_in_use();
        let b = m.mremap(a, 2 * 4096, 4 * 4096, true, None).unwrap();
        assert_ne!(b, a);
        assert_eq!(m.mem().pages_in_use(), used, "moved, not copied");
        let mut buf = [0u8; 6];
        m.copy_in(b + 4096, &mut buf).unwrap();
        assert_eq!(&buf, b"second");
        assert_eq!(m.copy_in(a, &mut buf), Err(EFAULT), "the old range is gone");
        assert!(!m.space.mapped.contains_key(&a));
        assert_eq!(m.space.mapped[&b].1, Access::RW);
        // Shrink in place frees the tail; grow in place into free space.
        assert_eq!(m.mremap(b, 4 * 4096, 4096, false, None), Ok(b));
        assert_eq!(m.mem().pages_in_use(), used - 1);
        assert_eq!(m.mremap(b, 4096, 3 * 4096, false, None), Ok(b));
        m.copy_in(b, &mut buf[..5]).unwrap();
        assert_eq!(&buf[..5], b"first");
        m.copy_in(b + 4096, &mut buf).unwrap();
        assert_eq!(buf, [0; 6], "grown memory reads as zero");
        // Errors: unaligned, a range that is not one mapping, overlapping fixed target.
        assert_eq!(m.mremap(b + 1, 4096, 8192, true, None), Err(EINVAL));
        assert_eq!(m.mremap(blocker, 8192, 4096, true, None), Err(EFAULT));
        assert_eq!(m.mremap(b, 4096, 8192, true, Some(b)), Err(EINVAL));
        let c = m.mremap(b, 4096, 4096, true, Some(0x50_0000)).unwrap();
        assert_eq!(c, 0x50_0000);
        m.copy_in(c, &mut buf[..5]).unwrap();
        assert_eq!(&buf[..5], b"first");
    }
}
