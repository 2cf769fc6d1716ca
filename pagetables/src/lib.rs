//! x86-64 4-level page tables (PML4 → PDPT → PD → PT) with 4 KiB and 2 MiB leaves.
//!
//! The tables live in "physical" memory reached through a [`PhysMem`] accessor, and table frames
//! come from a [`FrameAllocator`], so the same code builds boot tables from the host VMM (inside
//! guest memory), app tables inside the guest kernel, and tables in a test arena.
//!
//! Entry encoding is the architectural one: P, RW, US, PS (2 MiB leaves), G, NX (bit 63, so
//! EFER.NXE must be enabled), address bits 12..=51. Non-leaf entries are `P|RW|US` in the lower
//! half and `P|RW` (supervisor-only) in the upper half; leaves decide the permissions.
//!
//! The upper half (`va >= 0xffff_8000_0000_0000`, PML4 entries 256..512) is the kernel's: roots
//! made with [`PageTables::new_sharing_upper`] copy those PML4 entries and thus share the kernel's
//! PDPTs; upper-half tables are never freed. 1 GiB pages are never created and are ignored.
//!
//! The caller is responsible for TLB invalidation (on every CPU using the root) after `remap`,
//! `unmap` and `protect`, and before frames freed by `unmap` can be reused, and for serializing
//! changes to the shared upper half made through different roots.
#![no_std]
#![warn(missing_docs)]

use core::marker::PhantomData;

/// Size of a 4 KiB page / page-table frame.
pub const PAGE_SIZE: u64 = 4096;
/// Size of a 2 MiB (PD-level) large page.
pub const LARGE_PAGE_SIZE: u64 = 2 * 1024 * 1024;

const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PS: u64 = 1 << 7;
const G: u64 = 1 << 8;
const NX: u64 = 1 << 63;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const UPPER_HALF: u64 = 0xffff_8000_0000_0000;
const ENTRIES: usize = 512;
/// PML4 level number; PDPT = 2, PD = 1, PT = 0.
const PML4: u32 = 3;

/// Supplies zeroed 4 KiB frames (physical addresses) for new tables and takes them back.
pub trait FrameAllocator {
    /// A zero-filled 4 KiB-aligned frame, or None when out of memory. (The allocator guarantees
    /// zeroing.)
    fn alloc_frame(&mut self) -> Option<u64>;
    /// Returns a frame previously obtained from [`FrameAllocator::alloc_frame`].
    fn free_frame(&mut self, pa: u64);
}

/// Gives access to a page-table frame by physical address.
///
/// # Safety
/// For every `pa` it is called with, `table_ptr` must either panic or return a pointer that is
/// valid for (volatile) reads and writes of a whole `[u64; 512]` for as long as `self` is
/// borrowed, and that memory must not be accessed through Rust references meanwhile.
/// Page tables are walked through entries read from that memory, so an implementation must
/// bounds-check `pa` (e.g. `pa + 4096 <= memory size`) rather than trust it.
pub unsafe trait PhysMem {
    /// Pointer to the 512 entries of the table frame at physical address `pa` (4 KiB aligned).
    /// Implementations: host = mmap base + pa; guest = direct-map base + pa; tests = a
    /// Vec-backed arena.
    fn table_ptr(&self, pa: u64) -> *mut [u64; 512];
}

/// Permissions of a leaf mapping (always readable when present).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flags {
    /// RW bit.
    pub writable: bool,
    /// US bit: accessible from ring 3. Rejected in the upper half.
    pub user: bool,
    /// Clears NX.
    pub executable: bool,
    /// G bit: survives CR3 reloads.
    pub global: bool,
}

/// Size of a leaf mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB page (PT entry).
    Size4K,
    /// 2 MiB page (PD entry with PS).
    Size2M,
}

impl PageSize {
    /// Size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => PAGE_SIZE,
            PageSize::Size2M => LARGE_PAGE_SIZE,
        }
    }
}

/// One leaf mapping: `va` and `pa` are the page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Virtual address of the page start.
    pub va: u64,
    /// Physical address of the page start.
    pub pa: u64,
    /// Page size.
    pub size: PageSize,
    /// Leaf permissions.
    pub flags: Flags,
}

/// Page-table operation failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The frame allocator is exhausted.
    OutOfMemory,
    /// `va` or `pa` is not aligned to the page size (or `pa` is not below 2^52), or `unmap` was
    /// given an address that is not the start of the page found.
    Unaligned,
    /// `va` is not canonical.
    NonCanonical,
    /// A mapping of the same size already exists at `va`.
    AlreadyMapped,
    /// A 4K map where a 2M page is, or a 2M map where a page table is (in the upper half this
    /// includes a page table left empty by earlier 4K mappings, since those are never freed).
    Conflict,
    /// No mapping contains `va`.
    NotMapped,
    /// `user` mappings are not allowed in the kernel (upper) half.
    UserInKernelHalf,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

/// Whether va is canonical (bits 63..47 all equal).
pub fn is_canonical(va: u64) -> bool {
    (((va << 16) as i64) >> 16) as u64 == va
}

/// The permissions encoded in a leaf entry.
pub fn flags_of(entry: u64) -> Flags {
    Flags {
        writable: entry & RW != 0,
        user: entry & US != 0,
        executable: entry & NX == 0,
        global: entry & G != 0,
    }
}

fn flag_bits(f: Flags) -> u64 {
    let bit = |on: bool, bit: u64| if on { bit } else { 0 };
    bit(f.writable, RW) | bit(f.user, US) | bit(f.global, G) | bit(!f.executable, NX)
}

fn is_upper(va: u64) -> bool {
    va >= UPPER_HALF
}

/// Index of `va` in a table of the given level.
fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * level)) & 511) as usize
}

/// Bits of a non-leaf entry: kernel-half tables are supervisor-only.
fn table_bits(upper: bool) -> u64 {
    P | RW | if upper { 0 } else { US }
}

fn mapping_of(va: u64, entry: u64, size: PageSize) -> Mapping {
    let mask = !(size.bytes() - 1);
    Mapping {
        va: va & mask,
        pa: entry & ADDR_MASK & mask,
        size,
        flags: flags_of(entry),
    }
}

/// A table frame, borrowed from a [`PhysMem`] (one `table_ptr` call per table visited).
struct Table<'m> {
    ptr: *mut [u64; 512],
    _mem: PhantomData<&'m ()>,
}

impl<'m> Table<'m> {
    fn new(mem: &'m impl PhysMem, pa: u64) -> Self {
        Table {
            ptr: mem.table_ptr(pa),
            _mem: PhantomData,
        }
    }

    fn get(&self, idx: usize) -> u64 {
        // SAFETY: by `PhysMem`'s contract `ptr` is valid for reads of a [u64; 512] while the
        // memory is borrowed ('m); the place `(*ptr)[idx]` is bounds-checked and creates no reference.
        unsafe { (&raw const (*self.ptr)[idx]).read_volatile() }
    }

    fn set(&self, idx: usize, entry: u64) {
        // SAFETY: as in `get`, for writes.
        unsafe { (&raw mut (*self.ptr)[idx]).write_volatile(entry) }
    }

    fn is_empty(&self) -> bool {
        (0..ENTRIES).all(|i| self.get(i) & P == 0)
    }
}

fn read(mem: &impl PhysMem, table: u64, idx: usize) -> u64 {
    Table::new(mem, table).get(idx)
}

fn write(mem: &impl PhysMem, table: u64, idx: usize, entry: u64) {
    Table::new(mem, table).set(idx, entry)
}

/// Location of a leaf entry.
struct Leaf {
    table: u64,
    idx: usize,
    entry: u64,
    size: PageSize,
}

/// A handle to a page-table hierarchy, identified by the physical address of its PML4.
#[derive(Debug)]
pub struct PageTables {
    root: u64,
}

impl PageTables {
    /// New empty root (one zeroed frame).
    pub fn new(alloc: &mut impl FrameAllocator) -> Result<Self, Error> {
        let root = alloc.alloc_frame().ok_or(Error::OutOfMemory)?;
        Ok(Self { root })
    }

    /// Wrap an existing root (e.g. the one the VMM built), without taking ownership semantics
    /// beyond the handle.
    pub fn from_root(root_pa: u64) -> Self {
        debug_assert_eq!(root_pa & !ADDR_MASK, 0);
        Self { root: root_pa }
    }

    /// New root whose upper half (PML4 entries 256..512) are copies of `kernel`'s entries, so
    /// it shares the kernel's PDPTs. Call [`Self::prepopulate_upper`] on the kernel root first:
    /// an upper-half map through any root under a then-empty PML4 entry creates a PDPT private
    /// to that root (invisible to the others, and never freed).
    pub fn new_sharing_upper(
        kernel: &PageTables,
        mem: &impl PhysMem,
        alloc: &mut impl FrameAllocator,
    ) -> Result<Self, Error> {
        let new = Self::new(alloc)?;
        let (from, to) = (Table::new(mem, kernel.root), Table::new(mem, new.root));
        for i in ENTRIES / 2..ENTRIES {
            to.set(i, from.get(i));
        }
        Ok(new)
    }

    /// Allocates a PDPT for every empty upper PML4 entry, so that all later kernel mappings
    /// land in tables shared by roots made with [`Self::new_sharing_upper`] (256 frames).
    pub fn prepopulate_upper(
        &mut self,
        mem: &impl PhysMem,
        alloc: &mut impl FrameAllocator,
    ) -> Result<(), Error> {
        let root = Table::new(mem, self.root);
        for i in ENTRIES / 2..ENTRIES {
            if root.get(i) & P == 0 {
                let pdpt = alloc.alloc_frame().ok_or(Error::OutOfMemory)?;
                root.set(i, pdpt | table_bits(true));
            }
        }
        Ok(())
    }

    /// Physical address of the PML4, for CR3.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Map one page. Fails with AlreadyMapped if a mapping exists there (no silent overwrite),
    /// Conflict on size clash. On OutOfMemory, lower-half tables allocated for it are freed.
    pub fn map(
        &mut self,
        mem: &impl PhysMem,
        alloc: &mut impl FrameAllocator,
        va: u64,
        pa: u64,
        size: PageSize,
        flags: Flags,
    ) -> Result<(), Error> {
        self.install(mem, alloc, va, pa, size, flags, false)
            .map(|_| ())
    }

    /// Map, replacing an existing mapping of the same size at `va` (returned); Conflict on size
    /// clash. Used for remapping a page with new frame/flags.
    pub fn remap(
        &mut self,
        mem: &impl PhysMem,
        alloc: &mut impl FrameAllocator,
        va: u64,
        pa: u64,
        size: PageSize,
        flags: Flags,
    ) -> Result<Option<Mapping>, Error> {
        self.install(mem, alloc, va, pa, size, flags, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn install(
        &mut self,
        mem: &impl PhysMem,
        alloc: &mut impl FrameAllocator,
        va: u64,
        pa: u64,
        size: PageSize,
        flags: Flags,
        replace: bool,
    ) -> Result<Option<Mapping>, Error> {
        if !is_canonical(va) {
            return Err(Error::NonCanonical);
        }
        let bytes = size.bytes();
        if !va.is_multiple_of(bytes) || !pa.is_multiple_of(bytes) || pa & !ADDR_MASK != 0 {
            return Err(Error::Unaligned);
        }
        let upper = is_upper(va);
        if upper && flags.user {
            return Err(Error::UserInKernelHalf);
        }
        let leaf_level = if size == PageSize::Size2M { 1 } else { 0 };
        let mut table = self.root;
        for level in (leaf_level + 1..=PML4).rev() {
            let idx = index(va, level);
            let entry = read(mem, table, idx);
            table = if entry & P == 0 {
                let Some(new) = alloc.alloc_frame() else {
                    if !upper {
                        self.prune(mem, alloc, va);
                    }
                    return Err(Error::OutOfMemory);
                };
                debug_assert_eq!(new & !ADDR_MASK, 0);
                write(mem, table, idx, new | table_bits(upper));
                new
            } else if entry & PS != 0 {
                return Err(Error::Conflict); // a large page covers va
            } else {
                entry & ADDR_MASK
            };
        }
        let idx = index(va, leaf_level);
        let old = read(mem, table, idx);
        if old & P != 0 {
            if size == PageSize::Size2M && old & PS == 0 {
                return Err(Error::Conflict); // a page table is in the way
            }
            if !replace {
                return Err(Error::AlreadyMapped);
            }
        }
        let ps = if size == PageSize::Size2M { PS } else { 0 };
        write(mem, table, idx, pa | P | ps | flag_bits(flags));
        Ok((old & P != 0).then(|| mapping_of(va, old, size)))
    }

    /// Remove the mapping containing va (exact page start required for the size found, else
    /// Unaligned); returns it. Frees intermediate tables of the LOWER half that become empty
    /// (never frees upper-half tables: they are shared).
    pub fn unmap(
        &mut self,
        mem: &impl PhysMem,
        alloc: &mut impl FrameAllocator,
        va: u64,
    ) -> Result<Mapping, Error> {
        if !is_canonical(va) {
            return Err(Error::NonCanonical);
        }
        let leaf = self.find(mem, va).ok_or(Error::NotMapped)?;
        if !va.is_multiple_of(leaf.size.bytes()) {
            return Err(Error::Unaligned);
        }
        write(mem, leaf.table, leaf.idx, 0);
        if !is_upper(va) {
            self.prune(mem, alloc, va);
        }
        Ok(mapping_of(va, leaf.entry, leaf.size))
    }

    /// Frees the empty non-root tables on `va`'s path, bottom-up (lower half only).
    fn prune(&self, mem: &impl PhysMem, alloc: &mut impl FrameAllocator, va: u64) {
        debug_assert!(!is_upper(va));
        let mut parents = [(0u64, 0usize); 3];
        let mut depth = 0;
        let mut table = self.root;
        for level in (1..=PML4).rev() {
            let idx = index(va, level);
            let entry = read(mem, table, idx);
            if entry & P == 0 || entry & PS != 0 {
                break;
            }
            parents[depth] = (table, idx);
            depth += 1;
            table = entry & ADDR_MASK;
        }
        while depth > 0 && Table::new(mem, table).is_empty() {
            depth -= 1;
            let (parent, idx) = parents[depth];
            write(mem, parent, idx, 0);
            alloc.free_frame(table);
            table = parent;
        }
    }

    /// Change flags of the mapping containing va (any address in it); returns the old mapping.
    pub fn protect(&mut self, mem: &impl PhysMem, va: u64, flags: Flags) -> Result<Mapping, Error> {
        if !is_canonical(va) {
            return Err(Error::NonCanonical);
        }
        if is_upper(va) && flags.user {
            return Err(Error::UserInKernelHalf);
        }
        let leaf = self.find(mem, va).ok_or(Error::NotMapped)?;
        let entry = leaf.entry & !(RW | US | G | NX) | flag_bits(flags);
        write(mem, leaf.table, leaf.idx, entry);
        Ok(mapping_of(va, leaf.entry, leaf.size))
    }

    fn find(&self, mem: &impl PhysMem, va: u64) -> Option<Leaf> {
        if !is_canonical(va) {
            return None;
        }
        let mut table = self.root;
        for level in (0..=PML4).rev() {
            let idx = index(va, level);
            let entry = read(mem, table, idx);
            if entry & P == 0 {
                return None;
            }
            if level == 0 || entry & PS != 0 {
                let size = match level {
                    0 => PageSize::Size4K,
                    1 => PageSize::Size2M,
                    _ => return None, // 1 GiB pages are not supported
                };
                return Some(Leaf {
                    table,
                    idx,
                    entry,
                    size,
                });
            }
            table = entry & ADDR_MASK;
        }
        None
    }

    /// Translate: the mapping containing va, if any.
    pub fn lookup(&self, mem: &impl PhysMem, va: u64) -> Option<Mapping> {
        self.find(mem, va).map(|l| mapping_of(va, l.entry, l.size))
    }

    /// The physical address `va` translates to, if mapped.
    pub fn translate(&self, mem: &impl PhysMem, va: u64) -> Option<u64> {
        self.lookup(mem, va).map(|m| m.pa + (va - m.va))
    }

    /// Visit every leaf mapping whose page start is in [start, end), in ascending va order.
    pub fn walk(&self, mem: &impl PhysMem, start: u64, end: u64, mut f: impl FnMut(Mapping)) {
        walk_table(mem, self.root, PML4, 0, start, end, &mut f);
    }

    /// Free every lower-half table frame (not the leaf data frames) and the root itself. For
    /// destroying an app address space.
    pub fn destroy_lower(self, mem: &impl PhysMem, alloc: &mut impl FrameAllocator) {
        let root = Table::new(mem, self.root);
        for idx in 0..ENTRIES / 2 {
            let entry = root.get(idx);
            if entry & P != 0 && entry & PS == 0 {
                free_tree(mem, alloc, entry & ADDR_MASK, PML4 - 1);
            }
        }
        alloc.free_frame(self.root);
    }
}

fn walk_table(
    mem: &impl PhysMem,
    table: u64,
    level: u32,
    base: u64,
    start: u64,
    end: u64,
    f: &mut impl FnMut(Mapping),
) {
    let span = 1u64 << (12 + 9 * level);
    let entries = Table::new(mem, table);
    for idx in 0..ENTRIES {
        let mut va = base + idx as u64 * span;
        if level == PML4 && idx >= ENTRIES / 2 {
            va |= 0xffff_0000_0000_0000; // sign-extend
        }
        if va >= end || va + (span - 1) < start {
            continue;
        }
        let entry = entries.get(idx);
        if entry & P == 0 {
            continue;
        }
        if level == 0 || entry & PS != 0 {
            // A leaf (1 GiB leaves, never created here, are skipped).
            let size = [PageSize::Size4K, PageSize::Size2M].get(level as usize);
            if let (Some(&size), true) = (size, va >= start) {
                f(mapping_of(va, entry, size));
            }
        } else {
            walk_table(mem, entry & ADDR_MASK, level - 1, va, start, end, f);
        }
    }
}

fn free_tree(mem: &impl PhysMem, alloc: &mut impl FrameAllocator, table: u64, level: u32) {
    if level > 0 {
        let entries = Table::new(mem, table);
        for idx in 0..ENTRIES {
            let entry = entries.get(idx);
            if entry & P != 0 && entry & PS == 0 {
                free_tree(mem, alloc, entry & ADDR_MASK, level - 1);
            }
        }
    }
    alloc.free_frame(table);
}

#[cfg(test)]
mod tests;
