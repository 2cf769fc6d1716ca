extern crate std;

use super::*;
use core::cell::UnsafeCell;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::vec::Vec;

const BASE: u64 = 0x10_0000;

#[repr(C, align(4096))]
struct Frame(UnsafeCell<[u64; 512]>);

/// Test "physical memory": frame i lives at BASE + i * 4096.
struct Mem {
    frames: Vec<Frame>,
}

impl Mem {
    fn new(n: usize) -> Self {
        Mem {
            frames: (0..n).map(|_| Frame(UnsafeCell::new([0; 512]))).collect(),
        }
    }
}

// SAFETY: every pointer returned points into `self.frames` (bounds-checked, panics otherwise),
// which lives as long as `self`; tests never hold references to frame contents.
unsafe impl PhysMem for Mem {
    fn table_ptr(&self, pa: u64) -> *mut [u64; 512] {
        assert!(
            pa >= BASE && pa.is_multiple_of(PAGE_SIZE),
            "bad table pa {pa:#x}"
        );
        self.frames[((pa - BASE) / PAGE_SIZE) as usize].0.get()
    }
}

/// Frame allocator over a `Mem`, tracking live frames; freed frames are poisoned.
struct Alloc<'m> {
    mem: &'m Mem,
    next: usize,
    free: Vec<u64>,
    live: BTreeSet<u64>,
    frees: usize,
    limit: usize,
}

impl<'m> Alloc<'m> {
    fn new(mem: &'m Mem) -> Self {
        let limit = mem.frames.len();
        Alloc {
            mem,
            next: 0,
            free: Vec::new(),
            live: BTreeSet::new(),
            frees: 0,
            limit,
        }
    }
    fn fill(&self, pa: u64, v: u64) {
        let t = Table::new(self.mem, pa);
        (0..ENTRIES).for_each(|i| t.set(i, v));
    }
}

impl FrameAllocator for Alloc<'_> {
    fn alloc_frame(&mut self) -> Option<u64> {
        if self.live.len() >= self.limit {
            return None;
        }
        let pa = self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            BASE + (self.next as u64 - 1) * PAGE_SIZE
        });
        self.fill(pa, 0);
        self.live.insert(pa);
        Some(pa)
    }
    fn free_frame(&mut self, pa: u64) {
        assert!(self.live.remove(&pa), "double/foreign free {pa:#x}");
        self.fill(pa, u64::MAX); // a stale walk through this frame panics in table_ptr
        self.free.push(pa);
        self.frees += 1;
    }
}

const fn fl(writable: bool, user: bool, executable: bool, global: bool) -> Flags {
    Flags {
        writable,
        user,
        executable,
        global,
    }
}
const RW_: Flags = fl(true, false, false, false);
const USER: Flags = fl(true, true, false, false);
const KTEXT: Flags = fl(false, false, true, true);
const K: u64 = 0xffff_8000_0000_0000;

fn m(va: u64, pa: u64, size: PageSize, flags: Flags) -> Mapping {
    Mapping {
        va,
        pa,
        size,
        flags,
    }
}

fn all(pt: &PageTables, mem: &Mem) -> Vec<Mapping> {
    let mut v = Vec::new();
    pt.walk(mem, 0, u64::MAX, |m| v.push(m));
    v
}

/// Raw entry at `level` (3 = PML4) on va's path.
fn raw(pt: &PageTables, mem: &Mem, va: u64, level: u32) -> u64 {
    let mut table = pt.root();
    for l in (level + 1..=PML4).rev() {
        table = read(mem, table, index(va, l)) & ADDR_MASK;
    }
    read(mem, table, index(va, level))
}

#[test]
fn canonical() {
    assert!(is_canonical(0) && is_canonical(0x7fff_ffff_ffff) && is_canonical(K));
    assert!(is_canonical(u64::MAX));
    assert!(!is_canonical(0x8000_0000_0000) && !is_canonical(0xffff_7fff_ffff_ffff));
}

#[test]
fn map_lookup_translate() {
    let mem = Mem::new(64);
    let mut a = Alloc::new(&mem);
    let mut pt = PageTables::new(&mut a).unwrap();
    pt.map(&mem, &mut a, 0x40_1000, 0x9000, PageSize::Size4K, USER)
        .unwrap();
    pt.map(&mem, &mut a, 0x60_0000, 0x20_0000, PageSize::Size2M, RW_)
        .unwrap();
    pt.map(
        &mem,
        &mut a,
        K + 0x20_0000,
        0x40_0000,
        PageSize::Size2M,
        KTEXT,
    )
    .unwrap();
    assert_eq!(
        pt.lookup(&mem, 0x40_1abc),
        Some(m(0x40_1000, 0x9000, PageSize::Size4K, USER))
    );
    assert_eq!(pt.translate(&mem, 0x40_1abc), Some(0x9abc));
    assert_eq!(pt.translate(&mem, 0x7f_ffff), Some(0x3f_ffff));
    assert_eq!(pt.translate(&mem, K + 0x21_2345), Some(0x41_2345));
    assert_eq!(pt.lookup(&mem, 0x40_0000), None);
    assert_eq!(pt.lookup(&mem, 0x40_2000), None);
    assert_eq!(pt.lookup(&mem, 0x8000_0000_0000), None);
    assert_eq!(
        all(&pt, &mem),
        [
            m(0x40_1000, 0x9000, PageSize::Size4K, USER),
            m(0x60_0000, 0x20_0000, PageSize::Size2M, RW_),
            m(K + 0x20_0000, 0x40_0000, PageSize::Size2M, KTEXT),
        ]
    );
    let mut v = Vec::new();
    pt.walk(&mem, 0x40_2000, K + 0x20_0000, |m| v.push(m.va));
    assert_eq!(v, [0x60_0000]);
}

#[test]
fn entry_bits() {
    let mem = Mem::new(64);
    let mut a = Alloc::new(&mem);
    let mut pt = PageTables::new(&mut a).unwrap();
    pt.map(&mem, &mut a, 0x1000, 0x5000, PageSize::Size4K, USER)
        .unwrap();
    pt.map(&mem, &mut a, K, 0x20_0000, PageSize::Size2M, KTEXT)
        .unwrap();
    assert_eq!(raw(&pt, &mem, 0x1000, 0), 0x5000 | P | RW | US | NX);
    assert_eq!(raw(&pt, &mem, K, 1), 0x20_0000 | P | PS | G);
    for level in 1..=3 {
        assert_eq!(raw(&pt, &mem, 0x1000, level) & !ADDR_MASK, P | RW | US);
    }
    for level in 2..=3 {
        assert_eq!(raw(&pt, &mem, K, level) & !ADDR_MASK, P | RW);
    }
    assert_eq!(flags_of(raw(&pt, &mem, 0x1000, 0)), USER);
}

#[test]
fn errors() {
    let mem = Mem::new(64);
    let mut a = Alloc::new(&mem);
    let mut pt = PageTables::new(&mut a).unwrap();
    let (s4, s2) = (PageSize::Size4K, PageSize::Size2M);
    pt.map(&mem, &mut a, 0x20_0000, 0, s2, RW_).unwrap();
    pt.map(&mem, &mut a, 0x40_0000, 0, s4, RW_).unwrap();
    let mut map = |va, pa, size, flags| pt.map(&mem, &mut a, va, pa, size, flags);
    assert_eq!(map(0x20_0000, 0, s2, RW_), Err(Error::AlreadyMapped));
    assert_eq!(map(0x40_0000, 0x1000, s4, RW_), Err(Error::AlreadyMapped));
    assert_eq!(map(0x20_1000, 0, s4, RW_), Err(Error::Conflict));
    assert_eq!(map(0x40_0000, 0, s2, RW_), Err(Error::Conflict));
    assert_eq!(map(0x1234, 0, s4, RW_), Err(Error::Unaligned));
    assert_eq!(map(0x1000, 0x10, s4, RW_), Err(Error::Unaligned));
    assert_eq!(map(0x1000, 1 << 52, s4, RW_), Err(Error::Unaligned));
    assert_eq!(map(0x60_1000, 0, s2, RW_), Err(Error::Unaligned));
    assert_eq!(map(0x60_0000, 0x1000, s2, RW_), Err(Error::Unaligned));
    assert_eq!(map(0x8000_0000_0000, 0, s4, RW_), Err(Error::NonCanonical));
    assert_eq!(map(K, 0, s4, USER), Err(Error::UserInKernelHalf));
    assert_eq!(pt.protect(&mem, K, USER), Err(Error::UserInKernelHalf));
    assert_eq!(pt.protect(&mem, 0x1000, RW_), Err(Error::NotMapped));
    assert_eq!(pt.unmap(&mem, &mut a, 0x1000), Err(Error::NotMapped));
    assert_eq!(pt.unmap(&mem, &mut a, 0x20_1000), Err(Error::Unaligned));
    assert_eq!(pt.unmap(&mem, &mut a, 0x40_0001), Err(Error::Unaligned));
    assert_eq!(
        pt.unmap(&mem, &mut a, 0x8000_0000_0000),
        Err(Error::NonCanonical)
    );
    assert_eq!(
        pt.remap(&mem, &mut a, 0x20_1000, 0, s4, RW_),
        Err(Error::Conflict)
    );
    assert_eq!(
        pt.remap(&mem, &mut a, 0x40_0000, 0, s2, RW_),
        Err(Error::Conflict)
    );
}

#[test]
fn protect_remap_unmap() {
    let mem = Mem::new(64);
    let mut a = Alloc::new(&mem);
    let mut pt = PageTables::new(&mut a).unwrap();
    pt.map(&mem, &mut a, 0x5000, 0x7000, PageSize::Size4K, USER)
        .unwrap();
    let ro = Flags {
        writable: false,
        ..USER
    };
    assert_eq!(
        pt.protect(&mem, 0x5123, ro),
        Ok(m(0x5000, 0x7000, PageSize::Size4K, USER))
    );
    assert_eq!(raw(&pt, &mem, 0x5000, 0), 0x7000 | P | US | NX);
    assert_eq!(
        pt.remap(&mem, &mut a, 0x5000, 0x8000, PageSize::Size4K, RW_),
        Ok(Some(m(0x5000, 0x7000, PageSize::Size4K, ro)))
    );
    assert_eq!(
        pt.remap(&mem, &mut a, 0x6000, 0x9000, PageSize::Size4K, RW_),
        Ok(None)
    );
    assert_eq!(pt.translate(&mem, 0x5010), Some(0x8010));
    assert_eq!(
        pt.unmap(&mem, &mut a, 0x5000),
        Ok(m(0x5000, 0x8000, PageSize::Size4K, RW_))
    );
    assert_eq!(pt.lookup(&mem, 0x5000), None);
    assert_eq!(pt.translate(&mem, 0x6000), Some(0x9000));
}

#[test]
fn unmap_frees_empty_lower_tables_only() {
    let mem = Mem::new(64);
    let mut a = Alloc::new(&mem);
    let mut pt = PageTables::new(&mut a).unwrap();
    let root = BTreeSet::from([pt.root()]);
    pt.map(&mem, &mut a, 0x1000, 0, PageSize::Size4K, RW_)
        .unwrap();
    pt.map(&mem, &mut a, 0x2000, 0, PageSize::Size4K, RW_)
        .unwrap();
    assert_eq!(a.live.len(), 4);
    pt.unmap(&mem, &mut a, 0x1000).unwrap();
    assert_eq!(a.live.len(), 4);
    pt.unmap(&mem, &mut a, 0x2000).unwrap();
    assert_eq!(a.live, root);
    assert_eq!(read(&mem, pt.root(), 0), 0);
    // A 2M page can now take the freed PT's place.
    pt.map(&mem, &mut a, 0, 0, PageSize::Size2M, RW_).unwrap();
    pt.unmap(&mem, &mut a, 0).unwrap();
    assert_eq!(a.live, root);
    // Upper-half tables stay.
    pt.map(&mem, &mut a, K, 0, PageSize::Size4K, RW_).unwrap();
    pt.unmap(&mem, &mut a, K).unwrap();
    assert_eq!(a.live.len(), 4);
    assert_eq!(
        pt.map(&mem, &mut a, K, 0, PageSize::Size2M, RW_),
        Err(Error::Conflict)
    );
}

#[test]
fn out_of_memory_leaks_nothing() {
    let mem = Mem::new(64);
    let mut a = Alloc::new(&mem);
    let mut pt = PageTables::new(&mut a).unwrap();
    a.limit = 3; // root + PDPT + PD, no room for the PT
    let err = pt.map(&mem, &mut a, 0x1000, 0, PageSize::Size4K, RW_);
    assert_eq!(err, Err(Error::OutOfMemory));
    assert_eq!(a.live, BTreeSet::from([pt.root()]));
    a.limit = 0;
    assert_eq!(PageTables::new(&mut a).err(), Some(Error::OutOfMemory));
}

#[test]
fn shared_upper_half_and_destroy() {
    let mem = Mem::new(512);
    let mut a = Alloc::new(&mem);
    let mut kernel = PageTables::new(&mut a).unwrap();
    kernel.prepopulate_upper(&mem, &mut a).unwrap();
    assert_eq!(a.live.len(), 257);
    let mut app_a = PageTables::new_sharing_upper(&kernel, &mem, &mut a).unwrap();
    let app_b = PageTables::new_sharing_upper(&kernel, &mem, &mut a).unwrap();

    // Kernel mappings made through any root are seen through all of them.
    app_a
        .map(&mem, &mut a, K + 0x1000, 0x3000, PageSize::Size4K, RW_)
        .unwrap();
    kernel
        .map(
            &mem,
            &mut a,
            u64::MAX - 0x1f_ffff,
            0x20_0000,
            PageSize::Size2M,
            KTEXT,
        )
        .unwrap();
    let mut kernel_frames = a.live.clone();
    kernel_frames.remove(&app_a.root());
    kernel_frames.remove(&app_b.root());
    // User mappings are private.
    app_a
        .map(&mem, &mut a, 0x40_0000, 0x5000, PageSize::Size4K, USER)
        .unwrap();
    app_a
        .map(
            &mem,
            &mut a,
            0x7fff_ffe0_0000,
            0x20_0000,
            PageSize::Size2M,
            USER,
        )
        .unwrap();
    for pt in [&kernel, &app_a, &app_b] {
        assert_eq!(pt.translate(&mem, K + 0x1abc), Some(0x3abc));
        assert_eq!(pt.translate(&mem, u64::MAX), Some(0x3f_ffff));
    }
    assert_eq!(app_b.lookup(&mem, 0x40_0000), None);
    assert_eq!(all(&app_a, &mem).len(), 4);
    assert_eq!(all(&app_b, &mem).len(), 2);
    let frees = a.frees;
    app_a.destroy_lower(&mem, &mut a);
    assert_eq!(a.frees - frees, 1 + 3 + 2); // root, PDPT+PD+PT, PDPT+PD
    app_b.destroy_lower(&mem, &mut a);
    assert_eq!(a.live, kernel_frames);
    assert_eq!(kernel.translate(&mem, K + 0x1000), Some(0x3000));
}

// ------------------------------------------------------------ model-based property test

/// Test window: 2M regions in both halves, including the first and the last one of each half.
const REGIONS: [u64; 7] = [
    0,
    0x20_0000,
    0x4000_0000,
    0x7fff_ffe0_0000,
    K,
    K + 0x20_0000,
    0xffff_ffff_ffe0_0000,
];
const PAGES: [u64; 4] = [0, 0x1000, 0x2000, 0x1f_f000];
const OFFSETS: [u64; 3] = [0, 0x10, 0xfff];
const NON_CANONICAL: u64 = 0x8000_0000_0000;

/// Operations; the first field is the root (0 = kernel, 1 = app) they go through.
#[derive(Clone, Debug)]
enum Op {
    /// map, or remap when the bool is set.
    Map(usize, Mapping, bool),
    Unmap(usize, u64),
    Protect(usize, u64, Flags),
    Walk(usize, u64, u64),
}

fn va_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => (0..REGIONS.len(), 0..PAGES.len()).prop_map(|(r, p)| REGIONS[r] + PAGES[p]),
        1 => (0..REGIONS.len(), 0..PAGES.len(), 0..OFFSETS.len())
            .prop_map(|(r, p, o)| REGIONS[r] + PAGES[p] + OFFSETS[o]),
        1 => Just(NON_CANONICAL),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let flags = (
        any::<bool>(),
        prop::bool::weighted(0.3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(w, u, x, g)| fl(w, u, x, g));
    let size = prop_oneof![3 => Just(PageSize::Size4K), 1 => Just(PageSize::Size2M)];
    let pa = (0..8u64, prop::bool::weighted(0.9))
        .prop_map(|(k, aligned)| k * LARGE_PAGE_SIZE + if aligned { 0 } else { PAGE_SIZE });
    let root = 0..2usize;
    prop_oneof![
        4 => (root.clone(), va_strategy(), pa, size, flags.clone(), any::<bool>())
            .prop_map(|(r, va, pa, size, flags, replace)| Op::Map(r, m(va, pa, size, flags), replace)),
        3 => (root.clone(), va_strategy()).prop_map(|(r, va)| Op::Unmap(r, va)),
        1 => (root.clone(), va_strategy(), flags).prop_map(|(r, va, f)| Op::Protect(r, va, f)),
        1 => (root, va_strategy(), va_strategy())
            .prop_map(|(r, a, b)| Op::Walk(r, a.min(b), a.max(b))),
    ]
}

/// Space 0 is the shared upper half, space 1 + root the lower half of each root.
#[derive(Default)]
struct Model {
    spaces: [BTreeMap<u64, Mapping>; 3],
    /// Upper-half 2M regions that have a (possibly empty, never freed) page table.
    upper_pts: BTreeSet<u64>,
}

impl Model {
    fn space(root: usize, va: u64) -> usize {
        if is_upper(va) {
            0
        } else {
            1 + root
        }
    }
    fn lookup(&self, root: usize, va: u64) -> Option<Mapping> {
        if !is_canonical(va) {
            return None;
        }
        let (_, m) = self.spaces[Self::space(root, va)]
            .range(..=va)
            .next_back()?;
        (va - m.va < m.size.bytes()).then_some(*m)
    }
    fn map(&mut self, root: usize, new: Mapping, replace: bool) -> Result<Option<Mapping>, Error> {
        let (va, bytes) = (new.va, new.size.bytes());
        if !is_canonical(va) {
            return Err(Error::NonCanonical);
        } else if !va.is_multiple_of(bytes) || !new.pa.is_multiple_of(bytes) {
            return Err(Error::Unaligned);
        } else if is_upper(va) && new.flags.user {
            return Err(Error::UserInKernelHalf);
        }
        let space = Self::space(root, va);
        let inside = self.spaces[space]
            .range(va..=va + (bytes - 1))
            .next()
            .map(|(_, m)| *m);
        match self.lookup(root, va).or(inside) {
            Some(old) if old.size != new.size => return Err(Error::Conflict),
            Some(_) if !replace => return Err(Error::AlreadyMapped),
            None if new.size == PageSize::Size2M && self.upper_pts.contains(&va) => {
                return Err(Error::Conflict)
            }
            _ => {}
        }
        if is_upper(va) && new.size == PageSize::Size4K {
            self.upper_pts.insert(va & !(LARGE_PAGE_SIZE - 1));
        }
        Ok(self.spaces[space].insert(va, new))
    }
    fn unmap(&mut self, root: usize, va: u64) -> Result<Mapping, Error> {
        if !is_canonical(va) {
            return Err(Error::NonCanonical);
        }
        let m = self.lookup(root, va).ok_or(Error::NotMapped)?;
        if m.va != va {
            return Err(Error::Unaligned);
        }
        self.spaces[Self::space(root, va)].remove(&va);
        Ok(m)
    }
    fn protect(&mut self, root: usize, va: u64, flags: Flags) -> Result<Mapping, Error> {
        if !is_canonical(va) {
            return Err(Error::NonCanonical);
        } else if is_upper(va) && flags.user {
            return Err(Error::UserInKernelHalf);
        }
        let m = self.lookup(root, va).ok_or(Error::NotMapped)?;
        self.spaces[Self::space(root, va)].insert(m.va, Mapping { flags, ..m });
        Ok(m)
    }
    fn view(&self, root: usize, start: u64, end: u64) -> Vec<Mapping> {
        let all = self.spaces[1 + root]
            .values()
            .chain(self.spaces[0].values());
        all.filter(|m| m.va >= start && m.va < end)
            .copied()
            .collect()
    }
}

/// Collects the table frames reachable from `table` (skipping ones already collected, i.e. the
/// shared upper half); asserts that no lower-half non-root table is empty.
fn reachable(mem: &Mem, table: u64, level: u32, upper: bool, out: &mut BTreeSet<u64>) {
    if !out.insert(table) {
        return;
    }
    let t = Table::new(mem, table);
    assert!(
        level == PML4 || upper || !t.is_empty(),
        "empty lower table {table:#x}"
    );
    for idx in (0..ENTRIES).filter(|_| level > 0) {
        let e = t.get(idx);
        if e & P != 0 && e & PS == 0 {
            let upper = upper || (level == PML4 && idx >= ENTRIES / 2);
            reachable(mem, e & ADDR_MASK, level - 1, upper, out);
        }
    }
}

fn check(mem: &Mem, a: &Alloc, roots: &[PageTables; 2], model: &Model) {
    let mut tables = BTreeSet::new();
    for (r, pt) in roots.iter().enumerate() {
        assert_eq!(all(pt, mem), model.view(r, 0, u64::MAX), "walk of root {r}");
        for &base in &REGIONS {
            for va in PAGES.iter().flat_map(|p| OFFSETS.map(|o| base + p + o)) {
                assert_eq!(
                    pt.lookup(mem, va),
                    model.lookup(r, va),
                    "lookup {va:#x} in root {r}"
                );
            }
        }
        reachable(mem, pt.root(), PML4, false, &mut tables);
    }
    assert_eq!(tables, a.live, "leaked or lost table frames");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn matches_model(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let mem = Mem::new(400);
        let mut a = Alloc::new(&mem);
        let mut kernel = PageTables::new(&mut a).unwrap();
        // Create the kernel PDPTs of the window's two upper PML4 slots before sharing them (as
        // prepopulate_upper does for all 256, which would make each full walk scan 256 PDPTs).
        for va in [K, REGIONS[6]] {
            kernel.map(&mem, &mut a, va, 0, PageSize::Size2M, RW_).unwrap();
            kernel.unmap(&mem, &mut a, va).unwrap();
        }
        let app = PageTables::new_sharing_upper(&kernel, &mem, &mut a).unwrap();
        let mut roots = [kernel, app];
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Map(r, new, replace) => {
                    let (pt, Mapping { va, pa, size, flags }) = (&mut roots[r], new);
                    let got = if replace {
                        pt.remap(&mem, &mut a, va, pa, size, flags)
                    } else {
                        pt.map(&mem, &mut a, va, pa, size, flags).map(|()| None)
                    };
                    prop_assert_eq!(got, model.map(r, new, replace));
                }
                Op::Unmap(r, va) => {
                    prop_assert_eq!(roots[r].unmap(&mem, &mut a, va), model.unmap(r, va));
                }
                Op::Protect(r, va, f) => {
                    prop_assert_eq!(roots[r].protect(&mem, va, f), model.protect(r, va, f));
                }
                Op::Walk(r, start, end) => {
                    let mut got = Vec::new();
                    roots[r].walk(&mem, start, end, |m| got.push(m));
                    prop_assert_eq!(got, model.view(r, start, end));
                }
            }
            check(&mem, &a, &roots, &model);
        }
        // Destroying both lower halves leaves exactly the shared upper-half tables.
        let [kernel, app] = roots;
        let mut upper_tables = BTreeSet::new();
        for va in [K, REGIONS[6]] {
            let pdpt = read(&mem, kernel.root(), index(va, PML4)) & ADDR_MASK;
            reachable(&mem, pdpt, PML4 - 1, true, &mut upper_tables);
        }
        app.destroy_lower(&mem, &mut a);
        kernel.destroy_lower(&mem, &mut a);
        prop_assert_eq!(&a.live, &upper_tables);
    }
}
