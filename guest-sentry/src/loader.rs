//! Loads a static ELF program (`ET_EXEC` or static-PIE `ET_DYN`) into a fresh address space and
//! builds the initial stack the way Linux does (argc, argv, envp, auxv; strings and
//! `AT_RANDOM` bytes above them). ELF structures are parsed with `goblin`.

use alloc::vec::Vec;

use goblin::container::{Container, Ctx};
use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{ProgramHeader, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};

use crate::abi::USER_TOP;
use crate::errno::{Errno, E2BIG, EFAULT, ENOEXEC, ENOMEM};
use crate::host::Host;
use crate::image_cache::{CachedImage, ImageLayout};
use crate::memfile::{page_down, page_up, PAGE_SIZE};
use crate::mm::{Mm, VmaKind, STACK_SIZE};
use crate::platform::{Access, AddressSpace, UserRegs};

/// Where a static-PIE program is placed (Linux's `ELF_ET_DYN_BASE` for x86-64).
pub const PIE_BASE: u64 = 0x5555_5555_4000;
/// Largest program file the loader reads.
const MAX_IMAGE: u64 = 512 << 20;
/// Linux's limit on argv + envp strings (`MAX_ARG_STRLEN * 32`, as for a 8 MiB stack / 4).
const MAX_ARGS_BYTES: usize = 2 << 20;

/// What `execve` needs to know about the new image.
pub struct Loaded {
    pub regs: UserRegs,
    pub entry: u64,
    /// Where the image went (kept with it by the image cache).
    pub layout: ImageLayout,
}

fn prot(flags: u32) -> Access {
    Access {
        read: flags & PF_R != 0,
        write: flags & PF_W != 0,
        execute: flags & PF_X != 0,
    }
}

/// Reads the whole program behind `handle`.
pub fn read_image(host: &dyn Host, handle: u32) -> Result<Vec<u8>, Errno> {
    let st = host.fstat(handle, false)?;
    if st.mode & 0o170000 != 0o100000 {
        return Err(crate::errno::EACCES);
    }
    if st.size > MAX_IMAGE {
        return Err(ENOMEM);
    }
    let mut buf = alloc::vec![0u8; st.size as usize];
    let mut done = 0usize;
    while done < buf.len() {
        let n = host.pread(handle, &mut buf[done..], done as u64)? as usize;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// Where a program's ELF interpreter (`PT_INTERP`, the dynamic loader) is placed: just above
/// the region `mmap` hands out addresses from, as Linux puts it near the mmap base.
pub const INTERP_BASE: u64 = 0x7f00_0000_0000;

/// The interpreter a program asks for (`PT_INTERP`: an absolute path), if any.
pub fn interpreter(image: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
    let (_, phdrs) = parse(image)?;
    let Some(p) = phdrs.iter().find(|p| p.p_type == PT_INTERP) else {
        return Ok(None);
    };
    let end = p.p_offset.checked_add(p.p_filesz).ok_or(ENOEXEC)?;
    if end > image.len() as u64 || p.p_filesz < 2 || p.p_filesz > 4096 {
        return Err(ENOEXEC);
    }
    let path = &image[p.p_offset as usize..end as usize];
    let path = path.strip_suffix(&[0]).unwrap_or(path);
    if path.first() != Some(&b'/') || path.contains(&0) {
        return Err(ENOEXEC);
    }
    Ok(Some(path.to_vec()))
}

/// A checked ELF header and its program headers.
fn parse(image: &[u8]) -> Result<(goblin::elf::Header, Vec<ProgramHeader>), Errno> {
    let header = goblin::elf::Elf::parse_header(image).map_err(|_| ENOEXEC)?;
    if header.e_ident[goblin::elf::header::EI_CLASS] != goblin::elf::header::ELFCLASS64
        || header.e_ident[goblin::elf::header::EI_DATA] != goblin::elf::header::ELFDATA2LSB
        || header.e_machine != EM_X86_64
        || (header.e_type != ET_EXEC && header.e_type != ET_DYN)
        || header.e_phentsize as usize != 56
        || header.e_phnum == 0
        || header.e_phnum > 128
    {
        return Err(ENOEXEC);
    }
    let ctx = Ctx::new(Container::Big, goblin::container::Endian::Little);
    let phdrs = ProgramHeader::parse(image, header.e_phoff as usize, header.e_phnum as usize, ctx)
        .map_err(|_| ENOEXEC)?;
    Ok((header, phdrs))
}

/// One ELF file's segments, loaded.
struct Segments {
    entry: u64,
    phdr: u64,
    phnum: u64,
    /// End of the highest segment (page-aligned).
    end: u64,
}

/// Loads `image`'s `PT_LOAD` segments into `mm`, `ET_DYN` ones at `dyn_base`.
fn load_segments<S: AddressSpace>(
    mm: &mut Mm<S>,
    image: &[u8],
    dyn_base: u64,
) -> Result<Segments, Errno> {
    let (header, phdrs) = parse(image)?;
    let bias = if header.e_type == ET_DYN { dyn_base } else { 0 };
    let mut prev: Option<(u64, Access)> = None; // end page and rights of the previous segment
    let mut image_end = 0u64;
    let mut phdr_addr = None;
    for p in phdrs.iter().filter(|p| p.p_type == PT_LOAD) {
        if p.p_filesz > p.p_memsz
            || p.p_offset
                .checked_add(p.p_filesz)
                .is_none_or(|e| e > image.len() as u64)
            || p.p_vaddr % PAGE_SIZE != p.p_offset % PAGE_SIZE
        {
            return Err(ENOEXEC);
        }
        let start = bias.checked_add(p.p_vaddr).ok_or(ENOEXEC)?;
        let end = start
            .checked_add(p.p_memsz)
            .filter(|&e| e <= USER_TOP)
            .ok_or(ENOEXEC)?;
        let access = prot(p.p_flags);
        let mut lo = page_down(start);
        let hi = page_up(end).ok_or(ENOEXEC)?;
        if let Some((prev_end, prev_access)) = prev {
            if lo < prev_end {
                // Two segments share a page: it gets the union of their rights.
                if lo + PAGE_SIZE != prev_end {
                    return Err(ENOEXEC);
                }
                mm.mprotect(lo, PAGE_SIZE, prev_access.union(access))?;
                lo += PAGE_SIZE;
            }
        }
        if lo < hi {
            mm.add_vma(lo, hi, access, VmaKind::Image)
                .map_err(|_| ENOEXEC)?;
        }
        let data = &image[p.p_offset as usize..(p.p_offset + p.p_filesz) as usize];
        mm.load(start, data)?;
        if header.e_phoff >= p.p_offset
            && header.e_phoff + 56 * header.e_phnum as u64 <= p.p_offset + p.p_filesz
        {
            phdr_addr = Some(start + (header.e_phoff - p.p_offset));
        }
        prev = Some((hi, access));
        image_end = image_end.max(hi);
    }
    if image_end == 0 {
        return Err(ENOEXEC);
    }
    if let Some(p) = phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        phdr_addr = Some(bias + p.p_vaddr);
    }
    Ok(Segments {
        entry: bias.checked_add(header.e_entry).ok_or(ENOEXEC)?,
        phdr: phdr_addr.unwrap_or(0),
        phnum: header.e_phnum as u64,
        end: image_end,
    })
}

/// Loads `image` into `mm` (which must be empty) and builds the stack. A dynamically linked
/// program (`PT_INTERP`) needs its interpreter's image in `interp`: it is loaded at
/// [`INTERP_BASE`] and started, with the program's entry in `AT_ENTRY` and its own base in
/// `AT_BASE`, as Linux does.
#[allow(clippy::too_many_arguments)]
pub fn load<S: AddressSpace>(
    mm: &mut Mm<S>,
    image: &[u8],
    interp: Option<&[u8]>,
    execfn: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    random: [u8; 16],
    ids: [u32; 4],
) -> Result<Loaded, Errno> {
    let wants_interp = interpreter(image)?.is_some();
    let main = load_segments(mm, image, PIE_BASE)?;
    let (base, start) = match (wants_interp, interp) {
        (false, _) => (0, main.entry),
        (true, Some(interp)) => {
            if interpreter(interp)?.is_some() {
                return Err(ENOEXEC);
            }
            let l = load_segments(mm, interp, INTERP_BASE)?;
            (INTERP_BASE, l.entry)
        }
        (true, None) => return Err(ENOEXEC),
    };
    mm.init_brk(main.end);
    let layout = ImageLayout {
        entry: main.entry,
        phdr: main.phdr,
        phnum: main.phnum,
        brk: main.end,
        base,
        start,
    };
    finish(mm, layout, execfn, argv, envp, random, ids)
}

/// Loads a program the image cache holds (into an empty `mm`): its frames are shared, not
/// copied; then the stack, as [`load`] builds it.
pub fn load_cached<S: AddressSpace>(
    mm: &mut Mm<S>,
    image: &CachedImage,
    execfn: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    random: [u8; 16],
    ids: [u32; 4],
) -> Result<Loaded, Errno> {
    mm.adopt_image(&image.vmas, &image.pages)?;
    mm.init_brk(image.layout.brk);
    finish(mm, image.layout, execfn, argv, envp, random, ids)
}

/// The initial stack and registers of a loaded image.
fn finish<S: AddressSpace>(
    mm: &mut Mm<S>,
    layout: ImageLayout,
    execfn: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    random: [u8; 16],
    ids: [u32; 4],
) -> Result<Loaded, Errno> {
    let rsp = build_stack(mm, execfn, argv, envp, random, ids, &layout)?;
    let regs = UserRegs {
        rip: layout.start,
        rsp,
        eflags: 0x202,
        ..Default::default()
    };
    Ok(Loaded {
        regs,
        entry: layout.entry,
        layout,
    })
}

/// Auxiliary vector keys.
mod at {
    pub const NULL: u64 = 0;
    pub const PHDR: u64 = 3;
    pub const PHENT: u64 = 4;
    pub const PHNUM: u64 = 5;
    pub const PAGESZ: u64 = 6;
    pub const BASE: u64 = 7;
    pub const FLAGS: u64 = 8;
    pub const ENTRY: u64 = 9;
    pub const UID: u64 = 11;
    pub const EUID: u64 = 12;
    pub const GID: u64 = 13;
    pub const EGID: u64 = 14;
    pub const PLATFORM: u64 = 15;
    pub const HWCAP: u64 = 16;
    pub const CLKTCK: u64 = 17;
    pub const SECURE: u64 = 23;
    pub const RANDOM: u64 = 25;
    pub const HWCAP2: u64 = 26;
    pub const EXECFN: u64 = 31;
}

#[allow(clippy::too_many_arguments)]
fn build_stack<S: AddressSpace>(
    mm: &mut Mm<S>,
    execfn: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    random: [u8; 16],
    ids: [u32; 4],
    layout: &ImageLayout,
) -> Result<u64, Errno> {
    let strings: usize =
        argv.iter().chain(envp).map(|s| s.len() + 1).sum::<usize>() + execfn.len() + 1;
    if strings > MAX_ARGS_BYTES {
        return Err(E2BIG);
    }
    let top = USER_TOP;
    mm.add_vma(top - STACK_SIZE, top, Access::RW, VmaKind::Stack)
        .map_err(|_| ENOMEM)?;

    // Strings and random bytes, from the top down.
    let mut sp = top - 8; // Linux leaves the top word as a NULL pointer marker.
    let mut push_bytes = |mm: &mut Mm<S>, data: &[u8], nul: bool| -> Result<u64, Errno> {
        sp -= data.len() as u64 + nul as u64;
        mm.copy_out(sp, data)?;
        if nul {
            mm.copy_out(sp + data.len() as u64, &[0])?;
        }
        Ok(sp)
    };
    let execfn_addr = push_bytes(mm, execfn, true)?;
    let mut env_addrs = Vec::with_capacity(envp.len());
    for e in envp.iter().rev() {
        env_addrs.push(push_bytes(mm, e, true)?);
    }
    env_addrs.reverse();
    let mut arg_addrs = Vec::with_capacity(argv.len());
    for a in argv.iter().rev() {
        arg_addrs.push(push_bytes(mm, a, true)?);
    }
    arg_addrs.reverse();
    let platform_addr = push_bytes(mm, b"x86_64", true)?;
    let random_addr = push_bytes(mm, &random, false)?;

    let hwcap = {
        let r = core::arch::x86_64::__cpuid(1);
        r.edx as u64
    };
    let auxv: [(u64, u64); 18] = [
        (at::PHDR, layout.phdr),
        (at::PHENT, 56),
        (at::PHNUM, layout.phnum),
        (at::PAGESZ, PAGE_SIZE),
        (at::BASE, layout.base),
        (at::FLAGS, 0),
        (at::ENTRY, layout.entry),
        (at::UID, ids[0] as u64),
        (at::EUID, ids[1] as u64),
        (at::GID, ids[2] as u64),
        (at::EGID, ids[3] as u64),
        (at::PLATFORM, platform_addr),
        (at::HWCAP, hwcap),
        (at::CLKTCK, 100),
        (at::SECURE, 0),
        (at::RANDOM, random_addr),
        (at::HWCAP2, 0),
        (at::EXECFN, execfn_addr),
    ];
    // Pointer area: argc, argv..., NULL, envp..., NULL, auxv pairs, AT_NULL pair.
    let words = 1 + arg_addrs.len() + 1 + env_addrs.len() + 1 + 2 * (auxv.len() + 1);
    let mut sp = (sp - 8 * words as u64) & !15;
    let start = sp;
    let mut area = Vec::with_capacity(words);
    area.push(argv.len() as u64);
    area.extend_from_slice(&arg_addrs);
    area.push(0);
    area.extend_from_slice(&env_addrs);
    area.push(0);
    for (k, v) in auxv {
        area.push(k);
        area.push(v);
    }
    area.push(at::NULL);
    area.push(0);
    mm.write_obj(sp, area.as_slice()).map_err(|_| EFAULT)?;
    sp = start;
    Ok(sp)
}
