//! Address-space syscalls: `mmap`, `munmap`, `mprotect`, `madvise` (and `brk` in the table).

use crate::errno::{SysResult, EACCES, EBADF, EFAULT, EINVAL, ENODEV, ENOMEM, ENOSPC, EPERM};
use crate::file::{Dev, File};
use crate::kernel::{Kernel, Task};
use crate::memfile::{page_up, PAGE_SIZE};
use crate::platform::{Access, Platform};

const PROT_MASK: u64 = 0x7;
const MAP_TYPE: u64 = 0x0f;
const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_HUGETLB: u64 = 0x40000;
const MAP_FIXED_NOREPLACE: u64 = 0x100000;

fn access(prot: u64) -> Result<Access, crate::errno::Errno> {
    if prot & !PROT_MASK != 0 {
        return Err(EINVAL);
    }
    Ok(Access::from_prot(prot))
}

pub fn mmap<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [addr, len, prot, flags, fd, off] = a;
    let acc = access(prot)?;
    match flags & MAP_TYPE {
        MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE => {}
        _ => return Err(EINVAL),
    }
    if off % 4096 != 0 || len == 0 || flags & MAP_HUGETLB != 0 {
        return Err(EINVAL);
    }
    let fixed = flags & MAP_FIXED != 0;
    let noreplace = flags & MAP_FIXED_NOREPLACE != 0 && !fixed;
    if flags & MAP_ANONYMOUS == 0 {
        return map_file(k, t, [addr, len, prot, flags, fd, off], (fixed, noreplace));
    }
    let at = if flags & MAP_TYPE == MAP_PRIVATE {
        t.mm.lock().mmap_anon(addr, len, acc, fixed, noreplace)?
    } else {
        t.mm.lock()
            .mmap_shared_anon(addr, len, acc, fixed, noreplace)?
    };
    const MAP_NORESERVE: u64 = 0x4000;
    if flags & MAP_NORESERVE == 0 {
        t.mm.lock().prefault_small(at, len);
    }
    Ok(at)
}

/// `mmap` of a file: private memory filled with the file's contents from `off` at the time of
/// the call (the part past the end of the file reads as zero). `MAP_SHARED` is served the same
/// way when the mapping cannot write (nothing the sandbox does changes the file under it);
/// shared writable mappings, whose stores would have to reach the file, are not (ENODEV).
/// `/dev/zero` gives anonymous memory, as on Linux.
fn map_file<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    [addr, len, prot, flags, fd, off]: [u64; 6],
    (fixed, noreplace): (bool, bool),
) -> SysResult {
    let of = t
        .files
        .get()
        .fds
        .get(fd as usize)
        .and_then(|f| f.clone())
        .filter(|_| (fd as i32) >= 0)
        .ok_or(EBADF)?;
    let acc = access(prot)?;
    let shared = flags & MAP_TYPE != MAP_PRIVATE;
    // A host file is writable only when opened for writing through (`--rw`).
    let writable = match &of.file {
        File::Host(h) => h.write && of.writable(),
        _ => of.writable(),
    };
    if !of.readable() || (shared && acc.write && !writable) {
        return Err(EACCES);
    }
    if let File::Dev(Dev::Zero) = of.file {
        let at = if shared {
            t.mm.lock()
                .mmap_shared_anon(addr, len, acc, fixed, noreplace)?
        } else {
            t.mm.lock().mmap_anon(addr, len, acc, fixed, noreplace)?
        };
        return Ok(at);
    }
    if let (true, File::Mem { data, .. }) = (shared, &of.file) {
        // An overlay file's pages are frames of the memory file: the mapping is those
        // frames, as a tmpfs file's mapping is its page cache.
        if acc.write && data.write_sealed() {
            return Err(EPERM);
        }
        // The file's pages within its size; a page past the end is not made part of it.
        let frames = |n: u64| {
            let in_file = data
                .len()
                .div_ceil(PAGE_SIZE)
                .saturating_sub(off / PAGE_SIZE);
            let r = data.frames(off / PAGE_SIZE, n.min(in_file));
            r.map_err(|e| if e == ENOSPC { ENOMEM } else { e })
        };
        let mut mm = t.mm.lock();
        let at = mm.mmap_frames(addr, len, frames, acc, (fixed, noreplace))?;
        // Linux clears VM_MAYWRITE: an fd opened read-only, a write-sealed file.
        if !writable || data.write_sealed() {
            mm.deny_write(at, len);
        }
        return Ok(at);
    }
    if shared && acc.write {
        return Err(ENODEV);
    }
    let len = page_up(len).ok_or(ENOMEM)?;
    match &of.file {
        File::Host(h) if !h.dir && !h.path_only => {
            // Filled straight from the host file (zero copy), then given the asked-for rights.
            let at =
                t.mm.lock()
                    .mmap_anon(addr, len, Access::RW, fixed, noreplace)?;
            let filled = crate::syscalls::fs::read_host_at(k, t, h, at, len, off)
                .and_then(|_| t.mm.lock().mprotect(at, len, acc));
            if let Err(e) = filled {
                let _ = t.mm.lock().munmap(at, len);
                return Err(if e == EFAULT { ENOMEM } else { e });
            }
            // A shared mapping of a host file is a copy here: writes through it could never
            // reach the file, so it never becomes writable (EACCES from mprotect, as for an
            // fd opened read-only on Linux).
            if shared {
                t.mm.lock().deny_write(at, len);
            }
            Ok(at)
        }
        File::Mem { data, .. } => {
            let at = t.mm.lock().mmap_anon(addr, len, acc, fixed, noreplace)?;
            // A private copy of the pages the file has, within its size (holes, and the
            // part past the end, stay the mapping's zero pages).
            let size = data.len();
            let mut page = alloc::vec![0u8; PAGE_SIZE as usize];
            let mut r = Ok(());
            for (idx, frame) in data.present(off / PAGE_SIZE, len / PAGE_SIZE) {
                let pos = idx * PAGE_SIZE;
                let n = PAGE_SIZE.min(size.saturating_sub(pos)) as usize;
                if n == 0 {
                    break;
                }
                data.read_frame(frame, &mut page);
                r = t.mm.lock().load(at + (pos - off), &page[..n]);
                if r.is_err() {
                    break;
                }
            }
            if let Err(e) = r {
                let _ = t.mm.lock().munmap(at, len);
                return Err(if e == EFAULT { ENOMEM } else { e });
            }
            Ok(at)
        }
        _ => Err(ENODEV),
    }
}

/// `mremap(old, old_len, new_len, flags, new_addr)`.
pub fn mremap<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const MREMAP_MAYMOVE: u64 = 1;
    const MREMAP_FIXED: u64 = 2;
    const MREMAP_DONTUNMAP: u64 = 4;
    let flags = a[3];
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
        || (flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0)
    {
        return Err(EINVAL);
    }
    if flags & MREMAP_DONTUNMAP != 0 {
        // Leaving the old range mapped (and empty) is not supported.
        return Err(EINVAL);
    }
    let fixed = (flags & MREMAP_FIXED != 0).then_some(a[4]);
    t.mm.lock()
        .mremap(a[0], a[1], a[2], flags & MREMAP_MAYMOVE != 0, fixed)
}

pub fn munmap<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    t.mm.lock().munmap(a[0], a[1]).map(|_| 0)
}

pub fn mprotect<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let acc = access(a[2] & !0x0300_0000)?; // PROT_GROWSDOWN/UP are accepted and ignored
    t.mm.lock().mprotect(a[0], a[1], acc).map(|_| 0)
}

pub fn madvise<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const MADV_DONTNEED: u64 = 4;
    const MADV_FREE: u64 = 8;
    if !a[0].is_multiple_of(4096) {
        return Err(EINVAL);
    }
    if a[1] == 0 {
        return Ok(0);
    }
    match a[2] {
        MADV_DONTNEED | MADV_FREE => t.mm.lock().discard(a[0], a[1]).map(|_| 0),
        // Advice about access patterns, huge pages, fork behaviour: nothing to do here.
        0..=3 | 9..=25 => Ok(0),
        _ => Err(EINVAL),
    }
}

/// `msync(addr, len, flags)`: a shared mapping of an overlay file is the file's pages, and
/// nothing the sandbox maps is written back anywhere else, so there is nothing to flush; the
/// arguments are checked as Linux checks them (ENOMEM for a range with unmapped pages).
pub fn msync<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const MS_ASYNC: u64 = 1;
    const MS_INVALIDATE: u64 = 2;
    const MS_SYNC: u64 = 4;
    let [addr, len, flags, ..] = a;
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC
        || !addr.is_multiple_of(PAGE_SIZE)
    {
        return Err(EINVAL);
    }
    let end = page_up(len)
        .and_then(|l| addr.checked_add(l))
        .ok_or(ENOMEM)?;
    let mm = t.mm.lock();
    let mut cur = addr;
    while cur < end {
        let (_, v) = mm.vma_at(cur).ok_or(ENOMEM)?;
        cur = v.end;
    }
    Ok(0)
}
