//! Path syscalls and host files: `openat`, `pread64`/`pwrite64` and the `preadv` family,
//! `getdents64`, `lseek`, the
//! `stat` family, `readlinkat`, `faccessat`, `getcwd`/`chdir`, `dup`/`fcntl`, `sendfile`, and
//! finding what `execve` loads. Paths are made absolute here (against the cwd or a directory
//! fd) and resolved by the host under the sandbox root (`RESOLVE_IN_ROOT`), so `..` and
//! symlinks can never leave it; what the host cannot resolve is walked in [`super::walk`].
//! Host files are opened read-only, except in write-through mode (`vmm run --rw`), where a
//! write open goes to the host. Otherwise what the sandbox writes lands in the in-memory
//! overlay ([`super::ovl`]), or, with `--ro`, is refused with EROFS.

use alloc::rc::Rc;
use alloc::vec::Vec;

use zerocopy::{FromBytes, IntoBytes};

use crate::abi::{HostStat, HostStatfs, OPEN_DIRECTORY, OPEN_NOFOLLOW, OPEN_PATH};
use crate::errno::{
    Errno, SysResult, EACCES, EBADF, EINVAL, EISDIR, ENAMETOOLONG, ENOENT, ENOTDIR, EOPNOTSUPP,
    ERANGE, EROFS, ESPIPE,
};
use crate::file::{File, HostFile, OpenFile};
use crate::kernel::{Kernel, Task};
use crate::linux::{Dirent64, Stat, Statx, StatxTimestamp, Termios, Timespec};
use crate::platform::Platform;

use super::flags::*;
use super::io::{alloc_fd, file, AT_FDCWD};

const PATH_MAX: usize = 4096;

/// Makes `path` absolute: as is, or against the cwd (`AT_FDCWD`) or a directory fd.
pub(super) fn absolute<P: Platform>(
    t: &Task<P>,
    dirfd: u64,
    path: &[u8],
) -> Result<Vec<u8>, Errno> {
    if path.is_empty() {
        return Err(ENOENT);
    }
    let mut out = if path[0] == b'/' {
        Vec::new()
    } else if dirfd as i32 == AT_FDCWD {
        t.fs.lock().cwd.clone()
    } else {
        let of = file(t, dirfd)?;
        match &of.file {
            File::Host(h) if h.dir => h.path.clone(),
            File::Synthetic {
                at: Some((p, _)), ..
            } => p.clone(),
            _ => return Err(ENOTDIR),
        }
    };
    if !out.is_empty() && out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(path);
    if out.len() > PATH_MAX {
        return Err(ENAMETOOLONG);
    }
    Ok(out)
}

/// `path` with `.`, `..` and repeated slashes folded (for the cwd; the host resolved it).
pub(super) fn normalize(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::new();
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// The normalized path the app means by the absolute `abs`: `..` folded (physically when
/// links may come before it) and symlinks the host cannot follow for it resolved
/// ([`super::walk`]); the last one only if `follow`.
pub(super) fn sandbox_path<P: Platform>(
    k: &Kernel,
    t: &Task<P>,
    abs: &[u8],
    follow: bool,
) -> Result<Vec<u8>, Errno> {
    if super::walk::has_dotdot(abs) {
        return super::walk::walk(k, abs, follow, &|p| own_link(k, t, p));
    }
    super::walk::resolve(k, &normalize(abs), follow)
}

/// The target of a link of the Sentry's own trees at `np` (`/proc/self/root`, `/dev/fd`, …),
/// where it names a path.
fn own_link<P: Platform>(k: &Kernel, t: &Task<P>, np: &[u8]) -> Option<Vec<u8>> {
    match super::procfs::lookup(k, t, np).or_else(|| super::devfs::lookup(np)) {
        Some(Ok(super::procfs::Node::Link(target))) if target.first() == Some(&b'/') => {
            Some(target)
        }
        _ => None,
    }
}

fn read_path<P: Platform>(t: &mut Task<P>, addr: u64) -> Result<Vec<u8>, Errno> {
    t.mm.lock().read_cstr(addr, PATH_MAX)
}

/// Opens `abs` on the host (`OPEN_*` flags) and stats it: the handle and the stat.
fn host_open(k: &Kernel, abs: &[u8], flags: u64) -> Result<(u32, HostStat), Errno> {
    with_stat(k, k.host.open(abs, flags)?)
}

/// A freshly opened host handle with its `fstat` (closed again if that fails).
fn with_stat(k: &Kernel, h: u32) -> Result<(u32, HostStat), Errno> {
    match k.host.fstat(h, false) {
        Ok(st) => Ok((h, st)),
        Err(e) => {
            k.host.close(h);
            Err(e)
        }
    }
}

/// `stat` of a path without keeping it open.
pub(super) fn stat_path(k: &Kernel, abs: &[u8], nofollow: bool) -> Result<HostStat, Errno> {
    k.host.stat(abs, nofollow)
}

/// Installs `of` at the lowest free descriptor, close-on-exec if `flags` has `O_CLOEXEC`.
pub(super) fn install_fd<P: Platform>(t: &mut Task<P>, of: Rc<OpenFile>, flags: u64) -> SysResult {
    let fd = alloc_fd(t, 0, of)?;
    if flags & O_CLOEXEC != 0 {
        t.files.lock().cloexec.insert(fd);
    }
    Ok(fd)
}

/// `/dev/tty`: the sandbox's controlling terminal is the host terminal its stdio is on — the
/// first of host fds 0, 1, 2 that is a terminal; ENXIO when none is (as Linux says with no
/// controlling terminal).
fn open_tty<P: Platform>(k: &mut Kernel, t: &mut Task<P>, flags: u64) -> SysResult {
    if flags & O_DIRECTORY != 0 {
        return Err(ENOTDIR);
    }
    let mut termios = Termios::default();
    let fd = (0..3)
        .find(|&fd| {
            k.host
                .tty_ioctl(fd, super::io::TCGETS, termios.as_mut_bytes())
                .is_ok()
        })
        .ok_or(crate::errno::ENXIO)?;
    let mut of = OpenFile::new(File::Stdio(fd), flags & O_NONBLOCK != 0);
    of.access = flags & O_ACCMODE;
    install_fd(t, Rc::new(of), flags)
}

pub fn openat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [dirfd, path, mut flags, mode, ..] = a;
    let path = read_path(t, path)?;
    let abs = absolute(t, dirfd, &path)?;
    if flags & O_TMPFILE == O_TMPFILE {
        return Err(EOPNOTSUPP);
    }
    // A trailing slash names a directory: O_CREAT cannot make one (EISDIR, whether or not
    // the name exists), and anything else must be one (ENOTDIR), as O_DIRECTORY says.
    if path.ends_with(b"/") {
        if flags & O_CREAT != 0 {
            return Err(EISDIR);
        }
        flags |= O_DIRECTORY;
    }
    // O_CREAT|O_EXCL never follows a final symlink (it is EEXIST).
    let excl = flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL;
    let follow = flags & O_NOFOLLOW == 0 && !excl;
    let np = sandbox_path(k, t, &abs, follow)?;
    super::walk::retry_walked(k, &np, follow, |k, np| open_at_path(k, t, np, flags, mode))
}

/// Whether `np` is a node of the Sentry's own trees (`/proc`, `/dev`, `/sys`), and which.
enum Own {
    Tty,
    /// `/dev/ptmx` (and devpts's `/dev/pts/ptmx`): opening it makes a pty.
    Ptmx,
    /// `/dev/pts/N`: a pty's replica.
    Pts(crate::tty::PtyRef),
    Dev(crate::file::Dev),
    Node(super::procfs::Node),
}

/// The Sentry's own node at `np` (`follow`: a final link is followed), `None` outside its
/// trees. The `/dev/fd`, `/dev/stdin`… links lead into `/proc`.
fn own_node<P: Platform>(
    k: &Kernel,
    t: &Task<P>,
    np: &[u8],
    follow: bool,
) -> Option<Result<(Vec<u8>, Own), Errno>> {
    let np = super::devfs::follow_link(np, follow).unwrap_or_else(|| np.to_vec());
    if np == b"/dev/tty" {
        return Some(Ok((np, Own::Tty)));
    }
    if np == b"/dev/ptmx" || np == b"/dev/pts/ptmx" {
        return Some(Ok((np, Own::Ptmx)));
    }
    if np == b"/dev/pts" {
        let mut entries = alloc::vec![(b"ptmx".to_vec(), 2u8)];
        entries.extend(
            k.ptys
                .indices()
                .into_iter()
                .map(|i| (alloc::format!("{i}").into_bytes(), 2u8)),
        );
        return Some(Ok((np, Own::Node(super::procfs::Node::Dir(entries)))));
    }
    if let Some(name) = np.strip_prefix(b"/dev/pts/") {
        if let Some(pty) = pts_index(name).and_then(|i| k.ptys.get(i)) {
            return Some(Ok((np, Own::Pts(pty))));
        }
        if name.contains(&b'/')
            && pts_index(&name[..name.iter().position(|&b| b == b'/')?])
                .is_some_and(|i| k.ptys.get(i).is_some())
        {
            return Some(Err(crate::errno::ENOTDIR));
        }
        return Some(Err(ENOENT));
    }
    if let Some(dev) = crate::file::Dev::at(&np) {
        return Some(Ok((np, Own::Dev(dev))));
    }
    let node = super::procfs::lookup(k, t, &np).or_else(|| super::devfs::lookup(&np))?;
    Some(node.map(|n| (np, Own::Node(n))))
}

/// N of a `/dev/pts/N` name: decimal, no leading zero.
fn pts_index(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.len() > 4 || (name[0] == b'0' && name.len() > 1) {
        return None;
    }
    let s = core::str::from_utf8(name).ok()?;
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `openat` of the normalized absolute path `np`, resolved as far as the Sentry must.
fn open_at_path<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    np: &[u8],
    flags: u64,
    mode: u64,
) -> SysResult {
    match own_node(k, t, np, flags & O_NOFOLLOW == 0) {
        Some(Err(e)) => return Err(e),
        Some(Ok((_, Own::Tty))) => {
            if let Some(r) = super::tty::open_controlling(t, flags) {
                return r;
            }
            return open_tty(k, t, flags);
        }
        Some(Ok((_, Own::Ptmx))) => return super::tty::open_ptmx(k, t, flags),
        Some(Ok((_, Own::Pts(pty)))) => return super::tty::open_replica(t, &pty, flags),
        Some(Ok((p, Own::Node(node)))) => return open_proc(k, t, &p, node, flags),
        Some(Ok((_, Own::Dev(dev)))) => {
            if flags & O_DIRECTORY != 0 {
                return Err(ENOTDIR);
            }
            let mut of = OpenFile::new(File::Dev(dev), flags & O_NONBLOCK != 0);
            of.access = flags & O_ACCMODE;
            return install_fd(t, Rc::new(of), flags);
        }
        None => {}
    }
    let ovl_flags = if flags & O_PATH != 0 {
        flags & !(O_PATH | O_ACCMODE | O_CREAT | O_TRUNC)
    } else {
        flags
    };
    let abs = match super::ovl::open(k, t, np, ovl_flags, mode)? {
        super::ovl::Open::Fd(fd) => return Ok(fd),
        super::ovl::Open::Host(path) => path,
        super::ovl::Open::Write(path) => return open_write(k, t, path, flags, mode),
    };
    let mut hflags = 0;
    if flags & O_DIRECTORY != 0 {
        hflags |= OPEN_DIRECTORY;
    }
    if flags & O_NOFOLLOW != 0 {
        hflags |= OPEN_NOFOLLOW;
    }
    if flags & O_PATH != 0 {
        hflags |= OPEN_PATH;
    }
    let (handle, st) = host_open(k, &abs, hflags)?;
    let dir = st.mode & S_IFMT == S_IFDIR;
    let host = HostFile {
        handle,
        path: normalize(&abs),
        dir,
        path_only: flags & O_PATH != 0,
        write: false,
        append: false,
    };
    let of = Rc::new(OpenFile::new(File::Host(host), flags & O_NONBLOCK != 0));
    install_fd(t, of.clone(), flags).inspect_err(|_| crate::file::release(k.host, of))
}

/// A write-through open (`vmm run --rw`) of the host path `np`.
fn open_write<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    np: Vec<u8>,
    flags: u64,
    mode: u64,
) -> SysResult {
    let wflags = flags & (crate::abi::OPEN_WRITE_FLAGS | O_DIRECTORY | O_NOFOLLOW);
    let mode = (mode as u32) & 0o7777 & !t.fs.lock().umask;
    let (handle, st) = with_stat(k, k.host.open_write(&np, wflags, mode)?)?;
    let host = HostFile {
        handle,
        path: np,
        dir: st.mode & S_IFMT == S_IFDIR,
        path_only: false,
        write: flags & O_ACCMODE != 0,
        append: flags & O_APPEND != 0,
    };
    let mut of = OpenFile::new(File::Host(host), flags & O_NONBLOCK != 0);
    of.access = flags & O_ACCMODE;
    let of = Rc::new(of);
    install_fd(t, of.clone(), flags).inspect_err(|_| crate::file::release(k.host, of))
}

/// Writes to a host file opened for writing through (`at`: pwrite's offset).
pub fn write_host<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    h: &HostFile,
    iov: &[(u64, u64)],
    at: Option<u64>,
) -> SysResult {
    if !h.write || !of.writable() {
        return Err(EBADF);
    }
    let start = at.unwrap_or(of.offset.get());
    let done = host_io(k, t, h, iov, start, false)?;
    if at.is_none() {
        // An O_APPEND handle wrote at the end, wherever that was: the offset follows it.
        let end = if h.append {
            k.host.fstat(h.handle, false).map(|st| st.size)?
        } else {
            start + done
        };
        of.offset.set(end);
    }
    Ok(done)
}

/// Opens a `/proc` node: files and directories as made-up contents, links by following them.
fn open_proc<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    abs: &[u8],
    node: super::procfs::Node,
    flags: u64,
) -> SysResult {
    use super::procfs::Node;
    let (data, dir) = match node {
        Node::Link(_) if flags & O_NOFOLLOW != 0 => return Err(crate::errno::ELOOP),
        Node::Link(target) => {
            // /proc/self/fd/N reopens descriptor N (as a dup); other links are paths.
            if let Some(fd) = super::procfs::fd_number(&normalize(abs)) {
                let of = file(t, fd)?;
                if let File::Mem { data, path, .. } = &of.file {
                    // An overlay file or memfd is opened anew, as Linux opens the inode the
                    // link names: its own access mode and offset.
                    if flags & O_TRUNC != 0 && flags & O_ACCMODE != 0 {
                        data.set_len(0)?;
                        data.modified(k.host.now(crate::host::Clock::Realtime) as i64);
                    }
                    let mut new = OpenFile::new(
                        File::Mem {
                            data: data.clone(),
                            path: path.clone(),
                            append: flags & O_APPEND != 0,
                        },
                        flags & O_NONBLOCK != 0,
                    );
                    new.access = flags & O_ACCMODE;
                    return install_fd(t, Rc::new(new), flags);
                }
                return alloc_fd(t, 0, of);
            }
            // Open the target path itself.
            let dir_only = if flags & O_DIRECTORY != 0 {
                OPEN_DIRECTORY
            } else {
                0
            };
            let (host, st) = host_open(k, &target, dir_only)?;
            let h = HostFile {
                handle: host,
                path: normalize(&target),
                dir: st.mode & S_IFMT == S_IFDIR,
                path_only: false,
                write: false,
                append: false,
            };
            let of = Rc::new(OpenFile::new(File::Host(h), flags & O_NONBLOCK != 0));
            return alloc_fd(t, 0, of);
        }
        Node::File(data) => (data, false),
        Node::Dir(entries) => (super::procfs::dirents(&entries), true),
    };
    if flags & O_DIRECTORY != 0 && !dir {
        return Err(ENOTDIR);
    }
    let of = Rc::new(OpenFile::new(
        File::Synthetic {
            data,
            dir,
            at: None,
        },
        flags & O_NONBLOCK != 0,
    ));
    install_fd(t, of, flags)
}

/// Reads a host file at the open file's offset (or `at`, for `pread`) into app memory.
pub fn read_host<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    h: &HostFile,
    iov: &[(u64, u64)],
    at: Option<u64>,
) -> SysResult {
    if h.path_only {
        return Err(EBADF);
    }
    if h.dir {
        return Err(EISDIR);
    }
    let start = at.unwrap_or(of.offset.get());
    let done = host_io(k, t, h, iov, start, true)?;
    if at.is_none() {
        of.offset.set(start + done);
    }
    Ok(done)
}

/// Reads a host file from `start` into `[addr, addr + len)` of app memory (for `mmap`);
/// returns how much the file had.
pub fn read_host_at<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    h: &HostFile,
    addr: u64,
    len: u64,
    start: u64,
) -> SysResult {
    host_io(k, t, h, &[(addr, len)], start, true)
}

/// Moves data between a host file at `start` and the app's `iov` (`to_app`: a read), zero
/// copy through the memory file, `IOV_MAX` ranges per host call; stops at the first short
/// transfer. An error after some progress reports the progress.
fn host_io<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    h: &HostFile,
    iov: &[(u64, u64)],
    start: u64,
    to_app: bool,
) -> SysResult {
    let mut bufs = Vec::new();
    for &(base, len) in iov {
        t.mm.lock()
            .io_bufs(base, len.min(0x7fff_f000), to_app, &mut bufs)?;
    }
    let mut done = 0u64;
    for chunk in bufs.chunks(crate::abi::IOV_MAX) {
        let want: u64 = chunk.iter().map(|b| b.len).sum();
        let r = if to_app {
            k.host.preadv(h.handle, chunk, start + done)
        } else {
            k.host.pwritev(h.handle, chunk, start + done)
        };
        match r {
            Ok(n) => {
                done += n;
                if n < want {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

pub fn pread64<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    positioned(k, t, a[0], &[(a[1], a[2])], a[3], true, false)
}

/// `pwrite64(fd, buf, count, offset)`: overlay files, and host files opened for writing
/// through (`--rw`).
pub fn pwrite64<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    positioned(k, t, a[0], &[(a[1], a[2])], a[3], false, false)
}

/// `preadv(fd, iov, iovcnt, pos_l, pos_h)` (on x86-64 `pos_l` is the whole offset).
pub fn preadv<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    file(t, a[0])?;
    let iov = super::io::read_iovec(t, a[1], a[2])?;
    positioned(k, t, a[0], &iov, a[3], true, false)
}

/// `pwritev(fd, iov, iovcnt, pos_l, pos_h)`.
pub fn pwritev<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    file(t, a[0])?;
    let iov = super::io::read_iovec(t, a[1], a[2])?;
    positioned(k, t, a[0], &iov, a[3], false, false)
}

/// `preadv2`/`pwritev2(fd, iov, iovcnt, pos_l, pos_h, flags)`: offset -1 is the file
/// position (`readv`/`writev`). `RWF_HIPRI`, `RWF_DSYNC` and `RWF_SYNC` change nothing a
/// program can see here (no device queues; the overlay is memory, write-through host files are
/// the host's), nor does `RWF_NOWAIT` on files, which never wait here; on pipes and sockets it
/// is EOPNOTSUPP. `RWF_APPEND` writes at the end. Other bits: EOPNOTSUPP, as Linux.
pub fn prwv2<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6], to_app: bool) -> SysResult {
    use linux_raw_sys::general::{RWF_APPEND, RWF_DSYNC, RWF_HIPRI, RWF_NOWAIT, RWF_SYNC};
    let flags = u32::try_from(a[5]).map_err(|_| EOPNOTSUPP)?;
    if flags & !(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND) != 0 {
        return Err(EOPNOTSUPP);
    }
    let of = file(t, a[0])?;
    let iov = super::io::read_iovec(t, a[1], a[2])?;
    let regular = matches!(of.file, File::Host(_) | File::Mem { .. });
    if flags & RWF_NOWAIT != 0 && !regular {
        return Err(EOPNOTSUPP);
    }
    let append = !to_app && flags & RWF_APPEND != 0;
    if a[3] as i64 == -1 {
        if append && regular {
            // At the end, and the position follows, as for an O_APPEND descriptor.
            let end = positioned_end(k, &of)?;
            let done = positioned(k, t, a[0], &iov, end, false, false)?;
            of.offset.set(end + done);
            return Ok(done);
        }
        return super::io::rw(k, t, a[0], &iov, to_app);
    }
    positioned(k, t, a[0], &iov, a[3], to_app, append)
}

/// The size of a regular file (where `RWF_APPEND` writes).
fn positioned_end(k: &mut Kernel, of: &OpenFile) -> Result<u64, Errno> {
    match &of.file {
        File::Host(h) => k.host.fstat(h.handle, false).map(|st| st.size),
        File::Mem { data, .. } => Ok(data.len()),
        _ => Err(ESPIPE),
    }
}

/// A read or write at `offset` (the file position untouched): overlay files, and host files
/// (written only when opened for writing through, `--rw`); `append` writes at the end instead.
/// Anything else has no position (ESPIPE).
fn positioned<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    fd: u64,
    iov: &[(u64, u64)],
    offset: u64,
    to_app: bool,
    append: bool,
) -> SysResult {
    let of = file(t, fd)?;
    if (offset as i64) < 0 {
        return Err(EINVAL);
    }
    let at = if append {
        positioned_end(k, &of)?
    } else {
        offset
    };
    match &of.file {
        File::Host(h) if to_app => read_host(k, t, &of, h, iov, Some(at)),
        File::Host(h) => write_host(k, t, &of, h, iov, Some(at)),
        File::Mem { .. } => super::ovl::mem_rw(k, t, &of, iov, to_app, Some(at)),
        _ => Err(ESPIPE),
    }
}

pub fn lseek<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let of = file(t, a[0])?;
    let h = match &of.file {
        File::Host(h) => h,
        // Devices have no position: seeking them is allowed and does nothing.
        File::Dev(_) => return Ok(0),
        File::Mem { data, .. } => {
            let len = data.len() as i64;
            return seek(&of, a[1], a[2], || Ok(len));
        }
        File::Synthetic { data, .. } => return seek(&of, a[1], a[2], || Ok(data.len() as i64)),
        _ => return Err(ESPIPE),
    };
    if h.path_only {
        return Err(EBADF);
    }
    if h.dir {
        // Directory positions are the host's getdents cookies.
        return k.host.lseek(h.handle, a[1] as i64, a[2] as u32);
    }
    seek(&of, a[1], a[2], || {
        Ok(k.host.fstat(h.handle, false)?.size as i64)
    })
}

/// Moves the open file's offset per `lseek(offset, whence)`; `end` gives the size for SEEK_END.
fn seek(
    of: &OpenFile,
    offset: u64,
    whence: u64,
    end: impl FnOnce() -> Result<i64, Errno>,
) -> SysResult {
    const SEEK_SET: u64 = 0;
    const SEEK_CUR: u64 = 1;
    const SEEK_END: u64 = 2;
    let base = match whence {
        SEEK_SET => 0,
        SEEK_CUR => of.offset.get() as i64,
        SEEK_END => end()?,
        _ => return Err(EINVAL),
    };
    let new = base
        .checked_add(offset as i64)
        .filter(|&n| n >= 0)
        .ok_or(EINVAL)?;
    of.offset.set(new as u64);
    Ok(new as u64)
}

pub fn getdents64<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let of = file(t, a[0])?;
    if let File::Synthetic { data, dir, .. } = &of.file {
        if !dir {
            return Err(ENOTDIR);
        }
        // Whole records from the offset that fit in the caller's buffer.
        let start = of.offset.get() as usize;
        let mut end = start;
        while end < data.len() {
            let (head, _) = Dirent64::read_from_prefix(&data[end..]).map_err(|_| EINVAL)?;
            let reclen = head.d_reclen as usize;
            if end + reclen - start > a[2] as usize {
                break;
            }
            end += reclen;
        }
        if end == start && start < data.len() {
            return Err(EINVAL);
        }
        t.mm.lock().copy_out(a[1], &data[start..end])?;
        of.offset.set(end as u64);
        return Ok((end - start) as u64);
    }
    let File::Host(h) = &of.file else {
        return Err(ENOTDIR);
    };
    if h.path_only {
        return Err(EBADF);
    }
    if !h.dir {
        return Err(ENOTDIR);
    }
    let mut buf = alloc::vec![0u8; a[2].min(64 << 10) as usize];
    let n = k.host.getdents(h.handle, &mut buf)?;
    t.mm.lock().copy_out(a[1], &buf[..n as usize])?;
    Ok(n)
}

/// `stat` of a descriptor: stdio and host files from the host, pipes from the Sentry.
pub fn fd_stat<P: Platform>(k: &mut Kernel, t: &Task<P>, fd: u64) -> Result<HostStat, Errno> {
    let of = file(t, fd)?;
    Ok(match &of.file {
        File::Stdio(hfd) => k.host.fstat(*hfd, true)?,
        File::Host(h) => k.host.fstat(h.handle, false)?,
        File::Synthetic {
            at: Some((_, st)), ..
        } => *st,
        File::Synthetic { data, dir, .. } => synthetic_stat(data.len(), *dir),
        File::Mem { data, .. } => super::ovl::file_stat(data),
        File::Dev(dev) => chr_stat(dev.rdev()),
        File::Pty(end) => super::tty::end_stat(end),
        // Event files live on Linux's anonymous inode: no file type, rw-------.
        File::Epoll(_)
        | File::EventFd(_)
        | File::TimerFd(_)
        | File::SignalFd(_)
        | File::PidFd(_) => HostStat {
            mode: 0o600,
            nlink: 1,
            blksize: 4096,
            ino: Rc::as_ptr(&of) as u64 & 0xffff_ffff,
            ..Default::default()
        },
        File::Socket(s) => HostStat {
            mode: 0o140777, // S_IFSOCK | rwxrwxrwx
            nlink: 1,
            blksize: 4096,
            ino: s.borrow().ino,
            dev: 0x8,
            ..Default::default()
        },
        File::Pipe(end) => HostStat {
            mode: 0o010600, // S_IFIFO | rw-------
            nlink: 1,
            blksize: 4096,
            ino: Rc::as_ptr(&end.pipe) as u64 & 0xffff_ffff,
            size: end.pipe.borrow().data.len() as u64,
            ..Default::default()
        },
    })
}

fn synthetic_stat(size: usize, dir: bool) -> HostStat {
    HostStat {
        mode: if dir { 0o040555 } else { 0o100444 },
        nlink: if dir { 2 } else { 1 },
        size: if dir { 0 } else { size as u64 },
        blksize: 4096,
        dev: 0x16, // like Linux's proc instance
        ..Default::default()
    }
}

/// The stat of `dirfd`/`path` per `flags` (AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW).
fn stat_at<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    dirfd: u64,
    path: u64,
    flags: u64,
) -> Result<HostStat, Errno> {
    let path = read_path(t, path)?;
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(ENOENT);
        }
        if dirfd as i32 == AT_FDCWD {
            let cwd = t.fs.lock().cwd.clone();
            return stat_path(k, &cwd, false);
        }
        return fd_stat(k, t, dirfd);
    }
    let abs = absolute(t, dirfd, &path)?;
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    let np = sandbox_path(k, t, &abs, follow)?;
    let st = super::walk::retry_walked(k, &np, follow, |k, np| stat_at_path(k, t, np, follow))?;
    // A trailing slash names a directory.
    if path.ends_with(b"/") && st.mode & S_IFMT != S_IFDIR && st.mode & S_IFMT != S_IFLNK {
        return Err(ENOTDIR);
    }
    Ok(st)
}

/// A character device's stat (the Sentry's own devices).
fn chr_stat(rdev: u64) -> HostStat {
    HostStat {
        mode: 0o020666, // S_IFCHR | rw-rw-rw-
        nlink: 1,
        blksize: 4096,
        rdev,
        ..Default::default()
    }
}

/// The stat of the normalized absolute path `np`, resolved as far as the Sentry must.
fn stat_at_path<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    np: &[u8],
    follow: bool,
) -> Result<HostStat, Errno> {
    if let Some(own) = own_node(k, t, np, follow) {
        let (np, own) = own?;
        return match own {
            Own::Tty => Ok(super::tty::dev_tty_stat()),
            Own::Ptmx => Ok(super::tty::ptmx_stat()),
            Own::Pts(pty) => Ok(super::tty::replica_stat(&pty.borrow())),
            Own::Dev(dev) => Ok(chr_stat(dev.rdev())),
            Own::Node(super::procfs::Node::File(d)) => Ok(synthetic_stat(d.len(), false)),
            Own::Node(super::procfs::Node::Dir(_)) => Ok(synthetic_stat(0, true)),
            Own::Node(super::procfs::Node::Link(target)) if !follow => Ok(HostStat {
                mode: 0o120777,
                nlink: 1,
                size: target.len() as u64,
                dev: 0x16,
                ..Default::default()
            }),
            Own::Node(super::procfs::Node::Link(target)) if target.first() == Some(&b'/') => {
                stat_path(k, &target, false)
            }
            Own::Node(super::procfs::Node::Link(_)) => {
                // A pipe or another descriptor that has no path: stat the descriptor itself.
                let fd = super::procfs::fd_number(&np).ok_or(ENOENT)?;
                fd_stat(k, t, fd)
            }
        };
    }
    super::ovl::stat(k, np, !follow)
}

/// `struct stat` (x86-64).
pub fn encode_stat(s: &HostStat) -> Stat {
    Stat {
        st_dev: s.dev,
        st_ino: s.ino,
        st_nlink: s.nlink as u64,
        st_mode: s.mode,
        st_uid: s.uid,
        st_gid: s.gid,
        st_rdev: s.rdev,
        st_size: s.size as i64,
        st_blksize: s.blksize as i64,
        st_blocks: s.blocks as i64,
        st_atime: Timespec::from_ns(s.atime_ns),
        st_mtime: Timespec::from_ns(s.mtime_ns),
        st_ctime: Timespec::from_ns(s.ctime_ns),
        ..Default::default()
    }
}

/// `struct statx`, every basic field filled (the birth time is not reported).
fn encode_statx(s: &HostStat) -> Statx {
    const STATX_BASIC_STATS: u32 = 0x7ff;
    let major = |d: u64| (((d >> 8) & 0xfff) | ((d >> 32) & !0xfff)) as u32;
    let minor = |d: u64| ((d & 0xff) | ((d >> 12) & !0xff)) as u32;
    Statx {
        stx_mask: STATX_BASIC_STATS,
        stx_blksize: s.blksize as u32,
        stx_nlink: s.nlink,
        stx_uid: s.uid,
        stx_gid: s.gid,
        stx_mode: s.mode as u16,
        stx_ino: s.ino,
        stx_size: s.size,
        stx_blocks: s.blocks,
        stx_atime: StatxTimestamp::from_ns(s.atime_ns),
        stx_ctime: StatxTimestamp::from_ns(s.ctime_ns),
        stx_mtime: StatxTimestamp::from_ns(s.mtime_ns),
        stx_rdev_major: major(s.rdev),
        stx_rdev_minor: minor(s.rdev),
        stx_dev_major: major(s.dev),
        stx_dev_minor: minor(s.dev),
        ..Default::default()
    }
}

pub fn fstat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let st = fd_stat(k, t, a[0])?;
    t.mm.lock().write_obj(a[1], &encode_stat(&st))?;
    Ok(0)
}

/// `newfstatat(dirfd, path, buf, flags)`; `stat`/`lstat` arrive here too.
pub fn newfstatat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let st = stat_at(k, t, a[0], a[1], a[3])?;
    t.mm.lock().write_obj(a[2], &encode_stat(&st))?;
    Ok(0)
}

/// `statx(dirfd, path, flags, mask, buf)`.
pub fn statx<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let st = stat_at(k, t, a[0], a[1], a[2])?;
    t.mm.lock().write_obj(a[4], &encode_statx(&st))?;
    Ok(0)
}

/// `statfs(path, buf)`: the filesystem the sandbox sees at `path` (a final symlink followed).
pub fn statfs<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    let np = sandbox_path(k, t, &absolute(t, AT_FDCWD as u64, &path)?, true)?;
    let sfs = super::walk::retry_walked(k, &np, true, |k, np| {
        stat_at_path(k, t, np, true)?;
        fs_at(k, np)
    })?;
    t.mm.lock().write_obj(a[1], &encode_statfs(&sfs))?;
    Ok(0)
}

/// `fstatfs(fd, buf)`.
pub fn fstatfs<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const PIPEFS_MAGIC: u64 = 0x5049_5045;
    const SOCKFS_MAGIC: u64 = 0x534f_434b;
    const ANON_INODE_FS_MAGIC: u64 = 0x0904_1934;
    const DEVPTS_SUPER_MAGIC: u64 = 0x1cd1;
    let of = file(t, a[0])?;
    let pseudo = |fs_type| HostStatfs {
        fs_type,
        bsize: 4096,
        namelen: 255,
        frsize: 4096,
        flags: ST_VALID,
        ..Default::default()
    };
    let sfs = match &of.file {
        File::Host(h) => fs_at(k, &h.path)?,
        File::Mem { data, .. } if data.is_memfd() => fs_at(k, crate::overlay::SHM_DIR)?,
        File::Mem { path, .. } => fs_at(k, path)?,
        File::Synthetic {
            at: Some((p, _)), ..
        } => fs_at(k, p)?,
        File::Synthetic { .. } => fs_at(k, b"/proc")?,
        File::Dev(_) => fs_at(k, b"/dev")?,
        File::Pipe(_) => pseudo(PIPEFS_MAGIC),
        File::Socket(_) => pseudo(SOCKFS_MAGIC),
        File::Stdio(fd) => match k.host.fstat(*fd, true)?.mode & S_IFMT {
            S_IFCHR => pseudo(DEVPTS_SUPER_MAGIC),
            S_IFIFO => pseudo(PIPEFS_MAGIC),
            S_IFSOCK => pseudo(SOCKFS_MAGIC),
            _ => fs_at(k, b"/")?,
        },
        _ => pseudo(ANON_INODE_FS_MAGIC),
    };
    t.mm.lock().write_obj(a[1], &encode_statfs(&sfs))?;
    Ok(0)
}

/// `statfs` `f_flags` bits.
const ST_VALID: u64 = 0x20;
const ST_RDONLY: u64 = 1;
const ST_NOSUID: u64 = 2;
const ST_NODEV: u64 = 4;
const ST_NOEXEC: u64 = 8;
const ST_RELATIME: u64 = 0x1000;

/// The filesystem at the normalized absolute path `np` (which exists), as the sandbox's mounts
/// are: procfs at `/proc`, an empty read-only sysfs at `/sys`, the Sentry's tmpfs at `/dev`
/// and `/dev/shm` (its size what the overlay may still hold), and at the root the host
/// filesystem under the overlay: with the overlay on, an overlayfs whose free space is the
/// overlay's (where writes land); read-only with `--ro`; the host's own with `--rw`.
fn fs_at(k: &Kernel, np: &[u8]) -> Result<HostStatfs, Errno> {
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    const PROC_SUPER_MAGIC: u64 = 0x9fa0;
    const SYSFS_MAGIC: u64 = 0x6265_6572;
    const OVERLAYFS_SUPER_MAGIC: u64 = 0x794c_7630;
    let under = |top: &[u8]| crate::overlay::under(np, top);
    let (total, free) = k.overlay.usage();
    let sized = |fs_type, flags| HostStatfs {
        fs_type,
        bsize: 4096,
        blocks: total,
        bfree: free,
        bavail: free,
        files: total,
        ffree: free,
        namelen: 255,
        frsize: 4096,
        flags: ST_VALID | flags,
    };
    let empty = |fs_type, flags| HostStatfs {
        fs_type,
        bsize: 4096,
        namelen: 255,
        frsize: 4096,
        flags: ST_VALID | flags,
        ..Default::default()
    };
    if under(b"/proc") {
        return Ok(empty(
            PROC_SUPER_MAGIC,
            ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_RELATIME,
        ));
    }
    if under(b"/sys") {
        return Ok(empty(
            SYSFS_MAGIC,
            ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_RELATIME,
        ));
    }
    if crate::overlay::in_shm(np) {
        return Ok(sized(TMPFS_MAGIC, ST_NOSUID | ST_NODEV));
    }
    if under(b"/dev") {
        return Ok(sized(TMPFS_MAGIC, ST_NOSUID));
    }
    if k.overlay.enabled {
        return Ok(sized(OVERLAYFS_SUPER_MAGIC, ST_RELATIME));
    }
    // The host filesystem itself: of `np`, or of its nearest ancestor the host has (a path
    // only the Sentry knows, such as a bound socket's).
    let mut p = np;
    let h = loop {
        match k.host.open(p, OPEN_PATH) {
            Ok(h) => break h,
            Err(_) if p.len() > 1 => {
                p = match p.iter().rposition(|&b| b == b'/') {
                    Some(0) | None => b"/",
                    Some(i) => &p[..i],
                }
            }
            Err(e) => return Err(e),
        }
    };
    let r = k.host.statfs(h);
    k.host.close(h);
    let mut sfs = r?;
    if k.config.read_only {
        sfs.flags |= ST_RDONLY;
    }
    Ok(sfs)
}

fn encode_statfs(s: &HostStatfs) -> crate::linux::Statfs {
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    crate::linux::Statfs {
        f_type: i(s.fs_type),
        f_bsize: i(s.bsize),
        f_blocks: s.blocks,
        f_bfree: s.bfree,
        f_bavail: s.bavail,
        f_files: s.files,
        f_ffree: s.ffree,
        f_fsid: [0; 2],
        f_namelen: i(s.namelen),
        f_frsize: i(s.frsize),
        f_flags: i(s.flags),
        f_spare: [0; 4],
    }
}

/// `readlinkat(dirfd, path, buf, size)`; `readlink` arrives here with `AT_FDCWD`.
pub fn readlinkat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let size = a[3] as i64;
    if size <= 0 {
        return Err(EINVAL);
    }
    let path = read_path(t, a[1])?;
    let abs = absolute(t, a[0], &path)?;
    let np = sandbox_path(k, t, &abs, false)?;
    let target = super::walk::retry_walked(k, &np, false, |k, np| link_target_at(k, t, np))?;
    let n = target.len().min(size as usize);
    t.mm.lock().copy_out(a[2], &target[..n])?;
    Ok(n as u64)
}

/// The target of the symlink at the normalized absolute path `np` (EINVAL if it is not one).
fn link_target_at<P: Platform>(k: &mut Kernel, t: &Task<P>, np: &[u8]) -> Result<Vec<u8>, Errno> {
    match own_node(k, t, np, false) {
        Some(Ok((_, Own::Node(super::procfs::Node::Link(target))))) => return Ok(target),
        Some(Ok(_)) => return Err(EINVAL),
        Some(Err(e)) => return Err(e),
        None => {}
    }
    match super::ovl::find(k, np) {
        super::ovl::Found::Gone => Err(ENOENT),
        super::ovl::Found::Upper(_) => k.overlay.link(np).map(<[u8]>::to_vec).ok_or(EINVAL),
        super::ovl::Found::Host => {
            let mut buf = alloc::vec![0u8; PATH_MAX];
            let n = k.host.readlink(np, &mut buf)? as usize;
            buf.truncate(n);
            Ok(buf)
        }
    }
}

/// `faccessat2(dirfd, path, mode, flags)`; `access`/`faccessat` arrive here too. The sandbox
/// runs as root: reads pass, execute needs an x bit (or a directory), writes need the overlay.
pub fn faccessat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const X_OK: u64 = 1;
    const W_OK: u64 = 2;
    let [dirfd, path, mode, flags, ..] = a;
    if mode & !7 != 0 {
        return Err(EINVAL);
    }
    let st = stat_at(
        k,
        t,
        dirfd,
        path,
        flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH),
    )?;
    if mode & W_OK != 0 && !k.overlay.enabled {
        return Err(EROFS);
    }
    if mode & X_OK != 0 && st.mode & S_IFMT != S_IFDIR && st.mode & 0o111 == 0 {
        return Err(EACCES);
    }
    Ok(0)
}

pub fn getcwd<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let mut cwd = t.fs.lock().cwd.clone();
    cwd.push(0);
    if (a[1] as usize) < cwd.len() {
        return Err(ERANGE);
    }
    t.mm.lock().copy_out(a[0], &cwd)?;
    Ok(cwd.len() as u64)
}

pub fn chdir<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    let abs = absolute(t, AT_FDCWD as u64, &path)?;
    let np = sandbox_path(k, t, &abs, true)?;
    let (dir, st) = super::walk::retry_walked(k, &np, true, |k, np| {
        stat_at_path(k, t, np, true).map(|st| (np.to_vec(), st))
    })?;
    if st.mode & S_IFMT != S_IFDIR {
        return Err(ENOTDIR);
    }
    t.fs.lock().cwd = dir;
    Ok(0)
}

pub fn fchdir<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let of = file(t, a[0])?;
    match &of.file {
        File::Host(h) if h.dir => {
            t.fs.lock().cwd = h.path.clone();
            Ok(0)
        }
        File::Synthetic {
            at: Some((p, _)), ..
        } => {
            t.fs.lock().cwd = p.clone();
            Ok(0)
        }
        _ => Err(ENOTDIR),
    }
}

/// `dup3(old, new, flags)`; `dup2` arrives with flags 0 and its same-fd rule.
fn dup_to<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    old: u64,
    new: u64,
    cloexec: bool,
) -> SysResult {
    let of = file(t, old)?;
    let limit = t.tg.get().rlimits[7].cur.min(1 << 20);
    if new >= limit {
        return Err(EBADF);
    }
    let new = new as usize;
    if let Ok(prev) = file(t, new as u64) {
        super::locks::closing(k, t, new as u64, &prev);
    }
    let prev = {
        let mut files = t.files.lock();
        if new >= files.fds.len() {
            files.fds.resize_with(new + 1, || None);
        }
        files.fds[new].replace(of)
    };
    if let Some(prev) = prev {
        crate::file::release(k.host, prev);
    }
    if cloexec {
        t.files.lock().cloexec.insert(new as u64);
    } else {
        t.files.lock().cloexec.remove(&(new as u64));
    }
    Ok(new as u64)
}

pub fn dup<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let of = file(t, a[0])?;
    alloc_fd(t, 0, of)
}

pub fn dup2<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[0] == a[1] {
        file(t, a[0])?;
        return Ok(a[1]);
    }
    dup_to(k, t, a[0], a[1], false)
}

pub fn dup3<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[0] == a[1] || a[2] & !O_CLOEXEC != 0 {
        return Err(EINVAL);
    }
    dup_to(k, t, a[0], a[1], a[2] & O_CLOEXEC != 0)
}

pub fn fcntl<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    use super::locks::*;
    if matches!(
        a[1],
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW
    ) {
        return record_lock(k, t, a[0], a[1], a[2]);
    }
    const F_DUPFD: u64 = 0;
    const F_GETFD: u64 = 1;
    const F_SETFD: u64 = 2;
    const F_GETFL: u64 = 3;
    const F_SETFL: u64 = 4;
    const F_DUPFD_CLOEXEC: u64 = 1030;
    const F_SETPIPE_SZ: u64 = 1031;
    const F_GETPIPE_SZ: u64 = 1032;
    const F_ADD_SEALS: u64 = 1033;
    const F_GET_SEALS: u64 = 1034;
    const FD_CLOEXEC: u64 = 1;
    let of = file(t, a[0])?;
    match a[1] {
        // Seals are a tmpfs file's (memfd_create, /dev/shm); other files take none.
        F_GET_SEALS => match &of.file {
            File::Mem { data, .. } => data.seals().map(u64::from).ok_or(EINVAL),
            _ => Err(EINVAL),
        },
        F_ADD_SEALS => match &of.file {
            File::Mem { data, .. } => {
                use crate::overlay::*;
                // 6.1's seals (F_SEAL_EXEC came with 6.3).
                let known =
                    F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
                let add = u32::try_from(a[2]).map_err(|_| EINVAL)?;
                if data.seals().is_none() || add & !known != 0 {
                    return Err(EINVAL);
                }
                if !of.writable() {
                    return Err(crate::errno::EPERM);
                }
                data.add_seals(add).map(|_| 0)
            }
            _ => Err(EINVAL),
        },
        F_GETPIPE_SZ => match &of.file {
            File::Pipe(end) => Ok(end.pipe.borrow().capacity as u64),
            _ => Err(EBADF),
        },
        F_SETPIPE_SZ => match &of.file {
            File::Pipe(end) => {
                // Linux: at least a page, a power of two; past /proc/sys/fs/pipe-max-size
                // (1 MiB) only with CAP_SYS_RESOURCE, which the sandbox's root has; never
                // below what the pipe holds (EBUSY).
                let want = (a[2] as u32 as u64).max(4096);
                if want > 1 << 31 {
                    return Err(EINVAL);
                }
                let size = want.next_power_of_two() as usize;
                let mut p = end.pipe.borrow_mut();
                if size < p.data.len() {
                    return Err(crate::errno::EBUSY);
                }
                p.capacity = size;
                p.gen_out = crate::events::stamp();
                drop(p);
                crate::sched::note_progress();
                Ok(size as u64)
            }
            _ => Err(EBADF),
        },
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let fd = alloc_fd(t, a[2] as usize, of)?;
            if a[1] == F_DUPFD_CLOEXEC {
                t.files.lock().cloexec.insert(fd);
            }
            Ok(fd)
        }
        F_GETFD => Ok(if t.files.lock().cloexec.contains(&a[0]) {
            FD_CLOEXEC
        } else {
            0
        }),
        F_SETFD => {
            if a[2] & FD_CLOEXEC != 0 {
                t.files.lock().cloexec.insert(a[0]);
            } else {
                t.files.lock().cloexec.remove(&a[0]);
            }
            Ok(0)
        }
        F_GETFL => {
            let acc = match &of.file {
                File::Pipe(end) if end.write => 1,
                File::Host(h) if h.path_only => O_PATH,
                File::Stdio(_) => 2,
                File::Epoll(_)
                | File::EventFd(_)
                | File::TimerFd(_)
                | File::SignalFd(_)
                | File::PidFd(_)
                | File::Socket(_) => 2,
                File::Mem { append, .. } => of.access | if *append { O_APPEND } else { 0 },
                _ => 0,
            };
            Ok(acc | if of.nonblock.get() { O_NONBLOCK } else { 0 })
        }
        F_SETFL => {
            of.nonblock.set(a[2] & O_NONBLOCK != 0);
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

/// An offset argument of the copying syscalls (`sendfile`, `copy_file_range`, `splice`):
/// `*ptr`, or the file position where `ptr` is 0; EINVAL when negative.
fn offset_arg<P: Platform>(t: &Task<P>, ptr: u64, of: &OpenFile) -> Result<u64, Errno> {
    if ptr == 0 {
        return Ok(of.offset.get());
    }
    let o = t.mm.lock().read_u64(ptr)?;
    if (o as i64) < 0 {
        return Err(EINVAL);
    }
    Ok(o)
}

/// Moves an offset argument on to `at`: `*ptr`, or the file position where `ptr` is 0.
fn set_offset_arg<P: Platform>(t: &Task<P>, ptr: u64, of: &OpenFile, at: u64) -> Result<(), Errno> {
    if ptr != 0 {
        t.mm.lock().write_obj(ptr, &at)?;
    } else {
        of.offset.set(at);
    }
    Ok(())
}

/// Up to `n` bytes of a host or overlay file from `at` (fewer at its end); EINVAL for any
/// other file.
fn read_file_at(k: &Kernel, of: &OpenFile, at: u64, n: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = alloc::vec![0u8; n];
    let got = match &of.file {
        File::Host(h) if !h.dir && !h.path_only => k.host.pread(h.handle, &mut buf, at)? as usize,
        File::Mem { data, .. } => data.read_at(at, &mut buf),
        _ => return Err(EINVAL),
    };
    buf.truncate(got);
    Ok(buf)
}

/// `sendfile(out, in, offset, count)` from a host or overlay file to stdio, a pipe, a socket
/// or an overlay file, through a Sentry buffer (at most 1 MiB per call, as a short count).
pub fn sendfile<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [out_fd, in_fd, off_ptr, count, ..] = a;
    let inf = file(t, in_fd)?;
    match &inf.file {
        File::Host(h) if !h.dir && !h.path_only => {}
        File::Mem { .. } => {}
        _ => return Err(EINVAL),
    }
    let outf = file(t, out_fd)?;
    let start = offset_arg(t, off_ptr, &inf)?;
    let buf = read_file_at(k, &inf, start, count.min(1 << 20) as usize)?;
    let got = buf.len();
    if got == 0 {
        return Ok(0);
    }
    let written = match &outf.file {
        File::Stdio(hfd) => {
            let b = crate::host::Buf {
                addr: buf.as_ptr() as u64,
                len: got as u64,
            };
            k.host.write(*hfd, &[b])?
        }
        File::Pipe(end) if end.write => {
            let mut p = end.pipe.borrow_mut();
            if p.readers == 0 {
                drop(p);
                crate::signal::raise(t, crate::signal::SIGPIPE);
                return Err(crate::errno::EPIPE);
            }
            let n = got.min(p.capacity.saturating_sub(p.data.len()));
            if n == 0 {
                return Err(crate::errno::EAGAIN);
            }
            p.data.extend(&buf[..n]);
            p.gen_in = crate::events::stamp();
            crate::sched::note_progress();
            n as u64
        }
        File::Socket(s) => super::socket::send_bytes(k, t, &outf, s, &buf[..got])?,
        // A file of the overlay (shutil.copyfile's way), at its position (Linux refuses an
        // O_APPEND one).
        File::Mem { data, append, .. } => {
            if !outf.writable() {
                return Err(EBADF);
            }
            if *append {
                return Err(EINVAL);
            }
            let pos = outf.offset.get();
            let n = data.write_at(pos, &buf[..got])? as u64;
            outf.offset.set(pos + n);
            data.modified(k.host.now(crate::host::Clock::Realtime) as i64);
            n
        }
        _ => return Err(EINVAL),
    };
    set_offset_arg(t, off_ptr, &inf, start + written)?;
    Ok(written)
}

/// `copy_file_range(fd_in, off_in, fd_out, off_out, len, flags)` between regular files, into
/// a file of the overlay (at most 1 MiB per call, as a short count): from the offsets given
/// (which move, the positions staying) or the files' positions. A host file written through
/// (`--rw`) as the destination is another filesystem (EXDEV: `cp` then copies itself).
pub fn copy_file_range<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [in_fd, off_in, out_fd, off_out, len, flags] = a;
    if flags != 0 {
        return Err(EINVAL);
    }
    let inf = file(t, in_fd)?;
    let outf = file(t, out_fd)?;
    if !inf.readable() || !outf.writable() {
        return Err(EBADF);
    }
    match &inf.file {
        File::Host(h) if h.dir => return Err(EISDIR),
        File::Host(h) if !h.path_only => {}
        File::Mem { .. } => {}
        File::Synthetic { dir: true, .. } => return Err(EISDIR),
        _ => return Err(EINVAL),
    }
    let (data, append) = match &outf.file {
        File::Mem { data, append, .. } => (data.clone(), *append),
        File::Host(h) if h.dir => return Err(EISDIR),
        File::Host(h) if h.write => return Err(crate::errno::EXDEV),
        File::Host(_) => return Err(EBADF),
        _ => return Err(EINVAL),
    };
    if append {
        return Err(EBADF);
    }
    let src = offset_arg(t, off_in, &inf)?;
    let dst = offset_arg(t, off_out, &outf)?;
    let n = len.min(1 << 20);
    if let File::Mem { data: sd, .. } = &inf.file {
        // The same file: the ranges may not overlap.
        if Rc::ptr_eq(sd, &data) && src < dst.saturating_add(n) && dst < src.saturating_add(n) {
            return Err(EINVAL);
        }
    }
    let buf = read_file_at(k, &inf, src, n as usize)?;
    let written = if buf.is_empty() {
        0
    } else {
        let w = data.write_at(dst, &buf)? as u64;
        data.modified(k.host.now(crate::host::Clock::Realtime) as i64);
        w
    };
    set_offset_arg(t, off_in, &inf, src + written)?;
    set_offset_arg(t, off_out, &outf, dst + written)?;
    Ok(written)
}

/// `splice(fd_in, off_in, fd_out, off_out, len, flags)`: at most `len` bytes from a pipe to
/// a pipe, an overlay file, a socket or host stdio, or from a host or overlay file into a
/// pipe, through a Sentry buffer (at most 64 KiB per call). A pipe takes no offset (ESPIPE).
/// An empty pipe with writers, or a full one, waits (EAGAIN with `SPLICE_F_NONBLOCK` or a
/// non-blocking descriptor).
pub fn splice<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const SPLICE_F_NONBLOCK: u64 = 2;
    const KNOWN: u64 = 0xf; // MOVE, NONBLOCK, MORE, GIFT
    let [in_fd, off_in, out_fd, off_out, len, flags] = a;
    if flags & !KNOWN != 0 {
        return Err(EINVAL);
    }
    let inf = file(t, in_fd)?;
    let outf = file(t, out_fd)?;
    if !inf.readable() || !outf.writable() {
        return Err(EBADF);
    }
    let in_pipe = matches!(&inf.file, File::Pipe(e) if !e.write);
    let out_pipe = matches!(&outf.file, File::Pipe(e) if e.write);
    if !in_pipe && !out_pipe {
        return Err(EINVAL);
    }
    if (in_pipe && off_in != 0) || (out_pipe && off_out != 0) {
        return Err(crate::errno::ESPIPE);
    }
    if let (File::Pipe(i), File::Pipe(o)) = (&inf.file, &outf.file) {
        if Rc::ptr_eq(&i.pipe, &o.pipe) {
            return Err(EINVAL);
        }
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let wait = |t: &mut Task<P>, of: &OpenFile| -> SysResult {
        if nonblock || of.nonblock.get() {
            return Err(crate::errno::EAGAIN);
        }
        t.request = Some(crate::sched::Request::Block);
        Ok(0)
    };
    let mut n = len.min(1 << 16) as usize;
    if n == 0 {
        return Ok(0);
    }
    // Room in the destination pipe bounds the transfer.
    if let File::Pipe(o) = &outf.file {
        let p = o.pipe.borrow();
        if p.readers == 0 {
            drop(p);
            crate::signal::raise(t, crate::signal::SIGPIPE);
            return Err(crate::errno::EPIPE);
        }
        let room = p.capacity.saturating_sub(p.data.len());
        if room == 0 {
            drop(p);
            return wait(t, &outf);
        }
        n = n.min(room);
    }
    // The bytes, not yet taken from their source.
    let in_at = if in_pipe {
        0
    } else {
        offset_arg(t, off_in, &inf)?
    };
    let buf: Vec<u8> = match &inf.file {
        File::Pipe(i) => {
            let p = i.pipe.borrow();
            if p.data.is_empty() {
                if p.writers == 0 {
                    return Ok(0);
                }
                drop(p);
                return wait(t, &inf);
            }
            p.data.iter().take(n).copied().collect()
        }
        _ => read_file_at(k, &inf, in_at, n)?,
    };
    if buf.is_empty() {
        return Ok(0);
    }
    let written = match &outf.file {
        File::Pipe(o) => {
            let mut p = o.pipe.borrow_mut();
            p.data.extend(&buf);
            p.gen_in = crate::events::stamp();
            buf.len() as u64
        }
        File::Mem { data, append, .. } => {
            if *append {
                return Err(EINVAL);
            }
            let at = offset_arg(t, off_out, &outf)?;
            let w = data.write_at(at, &buf)? as u64;
            data.modified(k.host.now(crate::host::Clock::Realtime) as i64);
            set_offset_arg(t, off_out, &outf, at + w)?;
            w
        }
        File::Stdio(hfd) => {
            let b = crate::host::Buf {
                addr: buf.as_ptr() as u64,
                len: buf.len() as u64,
            };
            k.host.write(*hfd, &[b])?
        }
        File::Socket(s) => super::socket::send_bytes(k, t, &outf, s, &buf)?,
        _ => return Err(EINVAL),
    };
    // Take what went from the source.
    match &inf.file {
        File::Pipe(i) => {
            let mut p = i.pipe.borrow_mut();
            if p.data.len() >= p.capacity {
                p.gen_out = crate::events::stamp();
            }
            p.data.drain(..written as usize);
        }
        _ => set_offset_arg(t, off_in, &inf, in_at + written)?,
    }
    crate::sched::note_progress();
    Ok(written)
}

/// `tee(fd_in, fd_out, len, flags)`: copies at most `len` bytes from one pipe to another
/// without taking them from the first. An empty source with writers, or a full destination,
/// waits (EAGAIN with `SPLICE_F_NONBLOCK` or a non-blocking descriptor); 0 when the source
/// has no writers left.
pub fn tee<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const SPLICE_F_NONBLOCK: u64 = 2;
    let [in_fd, out_fd, len, flags, ..] = a;
    if flags & !0xf != 0 {
        return Err(EINVAL);
    }
    let inf = file(t, in_fd)?;
    let outf = file(t, out_fd)?;
    let (File::Pipe(i), File::Pipe(o)) = (&inf.file, &outf.file) else {
        return Err(EINVAL);
    };
    if i.write || !o.write {
        return Err(EBADF);
    }
    if Rc::ptr_eq(&i.pipe, &o.pipe) {
        return Err(EINVAL);
    }
    let wait = |t: &mut Task<P>, of: &OpenFile| -> SysResult {
        if flags & SPLICE_F_NONBLOCK != 0 || of.nonblock.get() {
            return Err(crate::errno::EAGAIN);
        }
        t.request = Some(crate::sched::Request::Block);
        Ok(0)
    };
    if len == 0 {
        return Ok(0);
    }
    {
        let src = i.pipe.borrow();
        if src.data.is_empty() {
            if src.writers == 0 {
                return Ok(0);
            }
            drop(src);
            return wait(t, &inf);
        }
    }
    let mut dst = o.pipe.borrow_mut();
    if dst.readers == 0 {
        drop(dst);
        crate::signal::raise(t, crate::signal::SIGPIPE);
        return Err(crate::errno::EPIPE);
    }
    let room = dst.capacity.saturating_sub(dst.data.len());
    if room == 0 {
        drop(dst);
        return wait(t, &outf);
    }
    let n = (len as usize).min(room).min(1 << 16);
    let bytes: Vec<u8> = i.pipe.borrow().data.iter().take(n).copied().collect();
    dst.data.extend(&bytes);
    dst.gen_in = crate::events::stamp();
    drop(dst);
    crate::sched::note_progress();
    Ok(bytes.len() as u64)
}

/// What `execve` loads: the image, its canonical path and the final argv.
pub type ExecImage = (crate::image_cache::ExecSource, Vec<u8>, Vec<Vec<u8>>);

/// Reads the program for `execve`: resolves `path`, checks it is an executable regular file,
/// and follows `#!` lines (up to 4 deep). Returns the image, its canonical path and the final
/// argv (with the interpreter and its argument in front for scripts).
pub fn load_exec<P: Platform>(
    k: &mut Kernel,
    t: &Task<P>,
    path: &[u8],
    argv: Vec<Vec<u8>>,
    depth: u32,
) -> Result<ExecImage, Errno> {
    // /proc/self/exe is the Sentry's own: the running program (busybox re-executes itself so).
    let own = alloc::format!("/proc/{}/exe", t.pid);
    let path = if path == b"/proc/self/exe" || path == own.as_bytes() {
        &t.tg.get().exe_path[..]
    } else {
        path
    };
    let abs = absolute(t, AT_FDCWD as u64, path)?;
    let np = sandbox_path(k, t, &abs, true)?;
    super::walk::retry_walked(k, &np, true, |k, np| {
        load_exec_at(k, t, path, np, argv.clone(), depth)
    })
}

/// [`load_exec`] of the resolved normalized path `np` (`path`: as the app gave it).
fn load_exec_at<P: Platform>(
    k: &mut Kernel,
    t: &Task<P>,
    path: &[u8],
    np: &[u8],
    argv: Vec<Vec<u8>>,
    depth: u32,
) -> Result<ExecImage, Errno> {
    if super::walk::sentry_owned(np) {
        // The Sentry's own files and devices are not programs.
        return Err(EACCES);
    }
    let np = np.to_vec();
    let abs = np.clone();
    if let Some(crate::overlay::Node {
        kind: crate::overlay::Kind::File(d),
        ..
    }) = k.overlay.get(&np)
    {
        if d.mode() & 0o111 == 0 {
            return Err(EACCES);
        }
        let image = d.to_vec()?;
        let interp = read_interpreter(k, t, &image)?;
        let source = crate::image_cache::ExecSource::Bytes {
            image,
            interp,
            key: None,
        };
        return Ok((source, np, argv));
    }
    if let super::ovl::Found::Gone = super::ovl::find(k, &np) {
        return Err(ENOENT);
    }
    let (h, st) = host_open(k, &abs, 0)?;
    let check = if st.mode & S_IFMT != 0o100000 || st.mode & 0o111 == 0 {
        Err(EACCES)
    } else {
        Ok(())
    };
    // A program exec'd before (and unchanged since) is not read again.
    let key = crate::image_cache::ImageKey::of(&st);
    if check.is_ok() && k.images.enabled() {
        if let Some(image) = k.images.get(&key) {
            k.host.close(h);
            let source = crate::image_cache::ExecSource::Cached(image);
            return Ok((source, normalize(&abs), argv));
        }
    }
    let image = check.and_then(|_| crate::loader::read_image(k.host, h));
    k.host.close(h);
    let image = image?;
    if image.starts_with(b"#!") {
        if depth >= 4 {
            return Err(crate::errno::ELOOP);
        }
        let line_end = image
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(image.len())
            .min(256);
        let line = &image[2..line_end];
        let trimmed: Vec<u8> = line
            .iter()
            .copied()
            .skip_while(|b| *b == b' ' || *b == b'\t')
            .collect();
        let mut parts = trimmed.splitn(2, |b| *b == b' ' || *b == b'\t');
        let interp = parts.next().unwrap_or_default().to_vec();
        if interp.is_empty() {
            return Err(crate::errno::ENOEXEC);
        }
        let arg: Vec<u8> = parts
            .next()
            .map(|a| {
                let mut a = a.to_vec();
                while a.last().is_some_and(|b| b.is_ascii_whitespace()) {
                    a.pop();
                }
                a
            })
            .unwrap_or_default();
        let mut new_argv = alloc::vec![interp.clone()];
        if !arg.is_empty() {
            new_argv.push(arg);
        }
        new_argv.push(path.to_vec());
        new_argv.extend(argv.into_iter().skip(1));
        return load_exec(k, t, &interp, new_argv, depth + 1);
    }
    let interp = read_interpreter(k, t, &image)?;
    let source = crate::image_cache::ExecSource::Bytes {
        image,
        interp,
        key: Some(key),
    };
    Ok((source, normalize(&abs), argv))
}

/// The ELF interpreter a dynamically linked `image` names, read from the sandbox's tree (the
/// overlay first, as any path), or `None` for a static program.
fn read_interpreter<P: Platform>(
    k: &mut Kernel,
    t: &Task<P>,
    image: &[u8],
) -> Result<Option<Vec<u8>>, Errno> {
    let Some(path) = crate::loader::interpreter(image)? else {
        return Ok(None);
    };
    let np = sandbox_path(k, t, &absolute(t, AT_FDCWD as u64, &path)?, true)?;
    super::walk::retry_walked(k, &np, true, read_interpreter_at)
}

fn read_interpreter_at(k: &mut Kernel, np: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
    if super::walk::sentry_owned(np) {
        return Err(EACCES);
    }
    if let Some(crate::overlay::Node {
        kind: crate::overlay::Kind::File(d),
        ..
    }) = k.overlay.get(np)
    {
        return Ok(Some(d.to_vec()?));
    }
    if let super::ovl::Found::Gone = super::ovl::find(k, np) {
        return Err(ENOENT);
    }
    let (h, st) = host_open(k, np, 0)?;
    let image = if st.mode & S_IFMT != 0o100000 {
        Err(EACCES)
    } else {
        crate::loader::read_image(k.host, h)
    };
    k.host.close(h);
    image.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The byte-offset encoders these replaced, kept as the reference.
    /// `struct stat` (x86-64, 144 bytes).
    fn old_stat(s: &HostStat) -> [u8; 144] {
        let mut b = [0u8; 144];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(0, &s.dev.to_le_bytes());
        put(8, &s.ino.to_le_bytes());
        put(16, &(s.nlink as u64).to_le_bytes());
        put(24, &s.mode.to_le_bytes());
        put(28, &s.uid.to_le_bytes());
        put(32, &s.gid.to_le_bytes());
        put(40, &s.rdev.to_le_bytes());
        put(48, &s.size.to_le_bytes());
        put(56, &s.blksize.to_le_bytes());
        put(64, &s.blocks.to_le_bytes());
        for (i, ns) in [s.atime_ns, s.mtime_ns, s.ctime_ns].iter().enumerate() {
            put(72 + 16 * i, &ns.div_euclid(1_000_000_000).to_le_bytes());
            put(80 + 16 * i, &ns.rem_euclid(1_000_000_000).to_le_bytes());
        }
        b
    }

    /// `struct statx` (256 bytes), every basic field filled.
    fn old_statx(s: &HostStat) -> [u8; 256] {
        const STATX_BASIC_STATS: u32 = 0x7ff;
        let mut b = [0u8; 256];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(0, &STATX_BASIC_STATS.to_le_bytes());
        put(4, &(s.blksize as u32).to_le_bytes());
        put(16, &s.nlink.to_le_bytes());
        put(20, &s.uid.to_le_bytes());
        put(24, &s.gid.to_le_bytes());
        put(28, &(s.mode as u16).to_le_bytes());
        put(32, &s.ino.to_le_bytes());
        put(40, &s.size.to_le_bytes());
        put(48, &s.blocks.to_le_bytes());
        // atime 64, btime 80 (not reported), ctime 96, mtime 112: {i64 sec, u32 nsec, i32 pad}.
        for (off, ns) in [(64, s.atime_ns), (96, s.ctime_ns), (112, s.mtime_ns)] {
            put(off, &ns.div_euclid(1_000_000_000).to_le_bytes());
            put(
                off + 8,
                &(ns.rem_euclid(1_000_000_000) as u32).to_le_bytes(),
            );
        }
        let major = |d: u64| (((d >> 8) & 0xfff) | ((d >> 32) & !0xfff)) as u32;
        let minor = |d: u64| ((d & 0xff) | ((d >> 12) & !0xff)) as u32;
        put(128, &major(s.rdev).to_le_bytes());
        put(132, &minor(s.rdev).to_le_bytes());
        put(136, &major(s.dev).to_le_bytes());
        put(140, &minor(s.dev).to_le_bytes());
        b
    }

    #[test]
    fn stat_layouts_match_the_hand_written_ones() {
        let samples = [
            HostStat::default(),
            HostStat {
                mode: 0o100644,
                nlink: 3,
                uid: 1000,
                gid: 100,
                size: 123_456_789,
                blksize: 4096,
                blocks: 242,
                dev: 0x0000_1234_5678_9abc,
                ino: u64::MAX - 7,
                rdev: (5 << 8) | 1,
                atime_ns: 1_700_000_000_123_456_789,
                mtime_ns: -1_500_000_001,
                ctime_ns: 42,
            },
        ];
        for s in &samples {
            assert_eq!(encode_stat(s).as_bytes(), &old_stat(s)[..]);
            assert_eq!(encode_statx(s).as_bytes(), &old_statx(s)[..]);
        }
    }
}
