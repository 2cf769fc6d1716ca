//! Syscall-site patching, for platforms whose syscall trap is slow. On systrap every app
//! syscall is a seccomp trap: a host signal with a full frame and an `rt_sigreturn`, about a
//! microsecond before the Sentry even hears of it. The first time a site of the common form
//! `mov $nr, %eax; syscall` (7 bytes) traps, [`patch_site`] rewrites it into `jmp slot; ud2`,
//! where `slot` is a trampoline near the code (within a `rel32` jump, in a page of kind
//! [`VmaKind::Syscalls`]) that loads what the `syscall` instruction would have left — the
//! number in rax, the return address in rcx — and jumps to the platform's entry
//! ([`AddressSpace::syscall_entry`]), which hands the syscall over without a signal. gVisor's
//! systrap patches sites the same way.
//!
//! What the app sees stays the same: the jump touches no stack (a leaf function's red zone
//! survives), registers come back as after a real `syscall`, and code that jumps straight at
//! the old `syscall` instruction (site + 5) meets the `ud2`, whose #UD the Sentry serves as
//! that syscall ([`serve_ud`]). Pages are written through [`Mm::load`], which first makes a
//! frame still shared with another process (after `fork`) private: a patch never changes
//! code under a process that has no trampoline for it. Should the app unmap, remap, protect or
//! discard a trampoline page (it never asked for one, but a `MAP_FIXED` may land there), the
//! sites using it get their original bytes back first ([`unpatch_range`]).

use alloc::vec::Vec;

use crate::memfile::PAGE_SIZE;
use crate::mm::{Mm, VmaKind};
use crate::platform::{Access, AddressSpace};

/// `mov $imm32, %eax` + `syscall`.
const SITE_LEN: u64 = 7;
/// A trampoline slot: `movabs $ret, %rcx; mov $nr, %eax; jmp *0(%rip); .quad entry`, padded.
const SLOT_SIZE: u64 = 32;
const SLOTS_PER_PAGE: u32 = (PAGE_SIZE / SLOT_SIZE) as u32;
/// At most this many trampoline pages per address space (4 096 sites).
const MAX_PAGES: usize = 32;
/// How far a slot may be from the end of the jump (a little under the `rel32` reach).
const REACH: u64 = 0x7fff_0000;

/// Patches the syscall site that just trapped (the `syscall` instruction ends at `rip`) if it
/// is `mov $nr, %eax; syscall` in code the app cannot write. Best effort: anything unusual
/// leaves the site as it is (it keeps trapping).
pub fn patch_site<S: AddressSpace>(mm: &mut Mm<S>, rip: u64, nr: u64) {
    let Some(entry) = mm.space.syscall_entry() else {
        return;
    };
    let Some(site) = rip.checked_sub(SITE_LEN) else {
        return;
    };
    // The byte before the site too: a REX prefix there (`41 b8 …` is `mov $imm, %r8d`) would
    // make these bytes a different instruction.
    let Some((_, vma)) = mm.vma_at(site.saturating_sub(1)) else {
        return;
    };
    if vma.end < rip || !vma.access.execute || vma.access.write || vma.kind == VmaKind::Syscalls {
        return;
    }
    let mut b = [0u8; 8];
    if mm.copy_in(site - 1, &mut b).is_err() {
        return;
    }
    let imm = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    if (0x40..=0x4f).contains(&b[0])
        || b[1] != 0xb8
        || b[6..8] != [0x0f, 0x05]
        || u64::from(imm) != nr
    {
        return;
    }
    let Some(slot) = alloc_slot(mm, site + 5) else {
        return;
    };
    let mut code = [0xccu8; SLOT_SIZE as usize];
    code[0..2].copy_from_slice(&[0x48, 0xb9]);
    code[2..10].copy_from_slice(&rip.to_le_bytes());
    code[10] = 0xb8;
    code[11..15].copy_from_slice(&imm.to_le_bytes());
    code[15..21].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
    code[21..29].copy_from_slice(&entry.to_le_bytes());
    let rel = slot.wrapping_sub(site + 5) as i64 as i32;
    let mut jump = [0xe9, 0, 0, 0, 0, 0x0f, 0x0b];
    jump[1..5].copy_from_slice(&rel.to_le_bytes());
    if mm.load(slot, &code).is_ok() {
        let _ = mm.load(site, &jump);
    }
}

/// Restores the original `mov $nr, %eax; syscall` of every site whose slot lies in a
/// trampoline page overlapping `[start, end)`, and retires those pages: the app is about to
/// change that range. The slot itself says where its site is and what it held; a site is
/// restored only if it still jumps to that slot.
pub fn unpatch_range<S: AddressSpace>(mm: &mut Mm<S>, start: u64, end: u64) {
    let (hit, keep): (Vec<_>, Vec<_>) = mm
        .syscall_pages
        .iter()
        .partition(|&&(page, _)| page < end && page + PAGE_SIZE > start);
    if hit.is_empty() {
        return;
    }
    mm.syscall_pages = keep;
    for (page, used) in hit {
        for i in 0..u64::from(used) {
            let slot = page + i * SLOT_SIZE;
            let mut code = [0u8; 15];
            if mm.copy_in(slot, &mut code).is_err()
                || code[0..2] != [0x48, 0xb9]
                || code[10] != 0xb8
            {
                continue;
            }
            let rip = u64::from_le_bytes(code[2..10].try_into().expect("8 bytes"));
            let Some(site) = rip.checked_sub(SITE_LEN) else {
                continue;
            };
            let mut now = [0u8; SITE_LEN as usize];
            if mm.copy_in(site, &mut now).is_err() || now[0] != 0xe9 || now[5..7] != [0x0f, 0x0b] {
                continue;
            }
            let rel = i32::from_le_bytes([now[1], now[2], now[3], now[4]]) as i64;
            if (site + 5).wrapping_add(rel as u64) != slot {
                continue;
            }
            let mut original = [0xb8, 0, 0, 0, 0, 0x0f, 0x05];
            original[1..5].copy_from_slice(&code[11..15]);
            let _ = mm.load(site, &original);
        }
    }
}

/// Whether the #UD at `rip` is the `ud2` left at a patched site's old `syscall` instruction
/// (code jumped there directly): then it is served as that syscall.
pub fn serve_ud<S: AddressSpace>(mm: &mut Mm<S>, rip: u64) -> bool {
    let Some(site) = rip.checked_sub(5) else {
        return false;
    };
    let mut b = [0u8; SITE_LEN as usize];
    if mm.copy_in(site, &mut b).is_err() || b[0] != 0xe9 || b[5..7] != [0x0f, 0x0b] {
        return false;
    }
    let rel = i32::from_le_bytes([b[1], b[2], b[3], b[4]]) as i64;
    let target = rip.wrapping_add(rel as u64);
    matches!(mm.vma_at(target), Some((_, v)) if v.kind == VmaKind::Syscalls)
}

/// A free trampoline slot within reach of `from` (where the site's jump ends): in a page we
/// already have, or in a new one placed below the code.
fn alloc_slot<S: AddressSpace>(mm: &mut Mm<S>, from: u64) -> Option<u64> {
    let near = |page: u64| page.abs_diff(from) < REACH && (page + PAGE_SIZE).abs_diff(from) < REACH;
    // Forget pages the app has unmapped or replaced since.
    let pages = core::mem::take(&mut mm.syscall_pages);
    mm.syscall_pages = pages
        .into_iter()
        .filter(|&(page, _)| {
            matches!(mm.vma_at(page), Some((s, v)) if s == page && v.kind == VmaKind::Syscalls)
        })
        .collect();
    for (page, used) in mm.syscall_pages.iter_mut() {
        if *used < SLOTS_PER_PAGE && near(*page) {
            let slot = *page + u64::from(*used) * SLOT_SIZE;
            *used += 1;
            return Some(slot);
        }
    }
    if mm.syscall_pages.len() >= MAX_PAGES {
        return None;
    }
    let page = mm.find_free_below(from, PAGE_SIZE, from.saturating_sub(REACH - PAGE_SIZE))?;
    mm.add_vma(page, page + PAGE_SIZE, Access::RX, VmaKind::Syscalls)
        .ok()?;
    mm.syscall_pages.push((page, 1));
    Some(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Errno;
    use crate::memfile::MemoryFile;
    use alloc::rc::Rc;
    use std::vec;

    const ENTRY: u64 = 0x7fff_fffe_0123;

    struct Space(Option<u64>);
    impl AddressSpace for Space {
        fn map_file(&mut self, _: u64, _: u64, _: u64, _: Access) -> Result<(), Errno> {
            Ok(())
        }
        fn unmap(&mut self, _: u64, _: u64) {}
        fn syscall_entry(&self) -> Option<u64> {
            self.0
        }
    }

    const CODE: u64 = 0x40_0000;

    /// An address space with one page of code at `CODE` (`access`) holding `bytes` at +0x100.
    fn mm(entry: Option<u64>, access: Access, bytes: &[u8]) -> (Mm<Space>, Vec<u8>) {
        let mut backing = vec![0u8; 64 * 4096];
        // SAFETY: the Vec outlives the Mm in each test (returned alongside it).
        let mem = unsafe { MemoryFile::new(backing.as_mut_ptr() as u64, backing.len() as u64, 0) };
        let mut m = Mm::new(Space(entry), Rc::new(mem));
        m.add_vma(CODE, CODE + PAGE_SIZE, access, VmaKind::Image)
            .unwrap();
        m.load(CODE + 0x100, bytes).unwrap();
        (m, backing)
    }

    fn read(m: &mut Mm<Space>, addr: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        m.copy_in(addr, &mut b).unwrap();
        b
    }

    /// nop; mov $39, %eax; syscall; ret — the site at CODE + 0x101, `rip` after it + 0x108.
    const GETPID_SITE: [u8; 9] = [0x90, 0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3];

    #[test]
    fn site_becomes_jump_to_a_slot_below_the_code() {
        let (mut m, _b) = mm(Some(ENTRY), Access::RX, &GETPID_SITE);
        patch_site(&mut m, CODE + 0x108, 39);
        let site = read(&mut m, CODE + 0x101, 8);
        assert_eq!(site[0], 0xe9);
        assert_eq!(&site[5..], &[0x0f, 0x0b, 0xc3]);
        let rel = i32::from_le_bytes([site[1], site[2], site[3], site[4]]) as i64;
        let slot = (CODE + 0x106).wrapping_add(rel as u64);
        assert_eq!(
            slot,
            CODE - PAGE_SIZE,
            "first slot of a page just below the code"
        );
        let (_, v) = m.vma_at(slot).unwrap();
        assert_eq!((v.kind, v.access), (VmaKind::Syscalls, Access::RX));
        let code = read(&mut m, slot, 29);
        let mut want = vec![0x48, 0xb9];
        want.extend_from_slice(&(CODE + 0x108).to_le_bytes());
        want.extend_from_slice(&[0xb8, 39, 0, 0, 0, 0xff, 0x25, 0, 0, 0, 0]);
        want.extend_from_slice(&ENTRY.to_le_bytes());
        assert_eq!(code, want);
        // The old `syscall` instruction is a ud2 the Sentry serves; other #UDs are not.
        assert!(serve_ud(&mut m, CODE + 0x106));
        assert!(!serve_ud(&mut m, CODE + 0x107));
        assert!(!serve_ud(&mut m, CODE + 0x101));
        // A second site shares the page, in the next slot; a site already patched is left.
        m.load(CODE + 0x200, &GETPID_SITE).unwrap();
        patch_site(&mut m, CODE + 0x208, 39);
        let s2 = read(&mut m, CODE + 0x201, 5);
        let rel2 = i32::from_le_bytes([s2[1], s2[2], s2[3], s2[4]]) as i64;
        assert_eq!((CODE + 0x206).wrapping_add(rel2 as u64), slot + SLOT_SIZE);
        patch_site(&mut m, CODE + 0x108, 39);
        assert_eq!(read(&mut m, CODE + 0x101, 8), site);
        assert_eq!(m.syscall_pages, vec![(slot, 2)]);
    }

    #[test]
    fn unusual_sites_are_left_alone() {
        let cases: [(Option<u64>, Access, [u8; 9], u64); 5] = [
            // No fast entry (kvm, ptrace).
            (None, Access::RX, GETPID_SITE, 39),
            // `41 b8 …` is `mov $imm, %r8d`, not a load of eax.
            (
                Some(ENTRY),
                Access::RX,
                [0x41, 0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3],
                39,
            ),
            // The number in the instruction is not the one that trapped.
            (Some(ENTRY), Access::RX, GETPID_SITE, 40),
            // Code the app can write.
            (
                Some(ENTRY),
                Access {
                    read: true,
                    write: true,
                    execute: true,
                },
                GETPID_SITE,
                39,
            ),
            // Not a mov to eax.
            (
                Some(ENTRY),
                Access::RX,
                [0x90, 0xbf, 39, 0, 0, 0, 0x0f, 0x05, 0xc3],
                39,
            ),
        ];
        for (entry, access, bytes, nr) in cases {
            let (mut m, _b) = mm(entry, access, &bytes);
            patch_site(&mut m, CODE + 0x108, nr);
            assert_eq!(read(&mut m, CODE + 0x100, 9), bytes);
            assert_eq!(m.vma_count(), 1, "no trampoline page");
        }
    }

    #[test]
    fn changing_a_trampoline_page_restores_its_sites() {
        let slot_page = CODE - PAGE_SIZE;
        type Change = fn(&mut Mm<Space>, u64);
        let changes: [(&str, Change); 4] = [
            ("munmap", |m, p| m.munmap(p, PAGE_SIZE).unwrap()),
            ("MAP_FIXED over it", |m, p| {
                m.mmap_anon(p, PAGE_SIZE, Access::RW, true, false).unwrap();
            }),
            ("mprotect", |m, p| {
                m.mprotect(p, PAGE_SIZE, Access::R).unwrap()
            }),
            ("MADV_DONTNEED", |m, p| m.discard(p, PAGE_SIZE).unwrap()),
        ];
        for (what, change) in changes {
            let (mut m, _b) = mm(Some(ENTRY), Access::RX, &GETPID_SITE);
            m.load(CODE + 0x200, &GETPID_SITE).unwrap();
            patch_site(&mut m, CODE + 0x108, 39);
            patch_site(&mut m, CODE + 0x208, 39);
            assert_eq!(read(&mut m, CODE + 0x201, 1), [0xe9], "{what}");
            change(&mut m, slot_page);
            assert_eq!(read(&mut m, CODE + 0x100, 9), GETPID_SITE, "{what}");
            assert_eq!(read(&mut m, CODE + 0x200, 9), GETPID_SITE, "{what}");
            assert!(m.syscall_pages.is_empty(), "{what}");
            // A new patch gets a page of its own (not one the app now owns).
            patch_site(&mut m, CODE + 0x108, 39);
            let s = read(&mut m, CODE + 0x101, 5);
            let rel = i32::from_le_bytes([s[1], s[2], s[3], s[4]]) as i64;
            let slot = (CODE + 0x106).wrapping_add(rel as u64);
            if what != "munmap" {
                assert_ne!(slot & !(PAGE_SIZE - 1), slot_page, "{what}");
            }
            assert!(matches!(m.vma_at(slot), Some((_, v)) if v.kind == VmaKind::Syscalls));
        }
    }

    #[test]
    fn patching_after_fork_changes_only_the_patching_side() {
        let (mut parent, _b) = mm(Some(ENTRY), Access::RX, &GETPID_SITE);
        let mut child = parent.fork_into(Space(Some(ENTRY))).unwrap();
        patch_site(&mut parent, CODE + 0x108, 39);
        assert_eq!(read(&mut parent, CODE + 0x101, 1), [0xe9]);
        assert_eq!(read(&mut child, CODE + 0x100, 9), GETPID_SITE);
        assert_eq!(child.vma_count(), 1);
        // The child patches its own copy; the parent's trampoline page is not shared with it.
        patch_site(&mut child, CODE + 0x108, 39);
        assert_eq!(read(&mut child, CODE + 0x101, 1), [0xe9]);
        child.release();
        parent.release();
    }
}
