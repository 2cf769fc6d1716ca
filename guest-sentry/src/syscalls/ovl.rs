//! Writes through the in-memory overlay ([`crate::overlay`]): creating, writing, truncating,
//! removing, renaming files and making directories. Host files are copied up on first write;
//! removed host entries are whited out, and nothing reaches the host tree. In write-through
//! mode (`vmm run --rw`) there is no overlay: the same syscalls change the host tree through
//! [`crate::host::Host::modify`]; with `--ro` they fail with EROFS.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::mem::size_of;

use zerocopy::FromBytes;

use crate::abi::HostStat;
use crate::errno::{
    Errno, SysResult, EBADF, EEXIST, EINVAL, EISDIR, ENOENT, ENOTDIR, ENOTEMPTY, EROFS, EXDEV,
};
use crate::file::{File, OpenFile};
use crate::host::Clock;
use crate::host::HostOp;
use crate::kernel::{Kernel, Task};
use crate::linux::{Dirent64, Timespec};
use crate::overlay::{in_shm, FileData, Kind};
use crate::platform::Platform;

use super::flags::*;
use super::fs::{absolute, install_fd, stat_path};
use super::io::{file, AT_FDCWD};

/// Largest host file copied up into memory.
const COPY_UP_MAX: u64 = 256 << 20;

/// What a path is, overlay first.
pub enum Found {
    /// An overlay file or directory: (mode with type, size, ino, mtime).
    Upper(HostStat),
    /// Removed (whiteout) or under a removed directory.
    Gone,
    /// Not in the overlay: ask the host.
    Host,
}

pub fn find(k: &Kernel, np: &[u8]) -> Found {
    if let Some(b) = k.unix.path(np) {
        // A Unix socket bound at this path (the table stands in for the VFS's socket file).
        return Found::Upper(HostStat {
            mode: b.mode,
            nlink: 1,
            blksize: 4096,
            ino: b.ino,
            dev: 0x26,
            atime_ns: b.mtime_ns,
            mtime_ns: b.mtime_ns,
            ctime_ns: b.mtime_ns,
            ..Default::default()
        });
    }
    if k.overlay.hidden(np) {
        return Found::Gone;
    }
    match k.overlay.get(np) {
        Some(n) => match &n.kind {
            Kind::Whiteout => Found::Gone,
            Kind::File(d) => Found::Upper(file_stat(d)),
            Kind::Symlink(target) => Found::Upper(HostStat {
                mode: 0o120777,
                nlink: 1,
                size: target.len() as u64,
                ino: n.ino(),
                dev: 0x26,
                uid: n.owner().0,
                gid: n.owner().1,
                atime_ns: n.atime_ns(),
                mtime_ns: n.mtime_ns(),
                ctime_ns: n.ctime_ns(),
                ..Default::default()
            }),
            Kind::Dir => Found::Upper(HostStat {
                mode: S_IFDIR | (n.mode()),
                nlink: 2,
                blksize: 4096,
                ino: n.ino(),
                dev: 0x26,
                uid: n.owner().0,
                gid: n.owner().1,
                atime_ns: n.atime_ns(),
                mtime_ns: n.mtime_ns(),
                ctime_ns: n.ctime_ns(),
                ..Default::default()
            }),
        },
        // Nothing of the host's is ever under the Sentry's /dev/shm.
        None if in_shm(np) => Found::Gone,
        None => Found::Host,
    }
}

/// The stat of an overlay file (of its inode: the same through every link and descriptor,
/// and after it is removed).
pub fn file_stat(d: &FileData) -> HostStat {
    HostStat {
        mode: S_IFREG | d.mode(),
        nlink: d.nlink(),
        size: d.len(),
        blksize: 4096,
        blocks: d.blocks(),
        ino: d.ino(),
        dev: 0x26,
        uid: d.owner().0,
        gid: d.owner().1,
        atime_ns: d.atime_ns(),
        mtime_ns: d.mtime_ns(),
        ctime_ns: d.ctime_ns(),
        ..Default::default()
    }
}

/// Whether `np` is a symlink made in the overlay.
pub(super) fn is_link(k: &Kernel, np: &[u8]) -> bool {
    k.overlay.link(np).is_some()
}

/// The stat of `np` through the overlay (following symlinks unless `nofollow`: those made in
/// the overlay, and host symlinks, which may lead into it, are walked by the Sentry).
pub fn stat(k: &Kernel, np: &[u8], nofollow: bool) -> Result<HostStat, Errno> {
    match find(k, np) {
        Found::Upper(_) if !nofollow && is_link(k, np) => stat(
            k,
            &super::walk::walk(k, np, true, &super::walk::no_own_links)?,
            true,
        ),
        Found::Upper(st) => Ok(st),
        Found::Gone => Err(ENOENT),
        Found::Host if !nofollow && !k.overlay.is_empty() => {
            let st = stat_path(k, np, true)?;
            if st.mode & S_IFMT != S_IFLNK {
                return Ok(st);
            }
            stat(
                k,
                &super::walk::walk(k, np, true, &super::walk::no_own_links)?,
                true,
            )
        }
        Found::Host => stat_path(k, np, nofollow),
    }
}

fn parent(np: &[u8]) -> &[u8] {
    match np.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/",
        Some(i) => &np[..i],
    }
}

fn require_dir(k: &Kernel, np: &[u8]) -> Result<(), Errno> {
    let st = stat(k, np, false)?;
    if st.mode & S_IFMT != S_IFDIR {
        return Err(ENOTDIR);
    }
    Ok(())
}

fn now(k: &Kernel) -> i64 {
    k.host.now(Clock::Realtime) as i64
}

/// The overlay file at `np`, copying the host file up first if needed.
fn upper_file(
    k: &mut Kernel,
    np: &[u8],
    create: Option<u32>,
    trunc: bool,
) -> Result<Rc<FileData>, Errno> {
    if let Some(n) = k.overlay.get(np) {
        if let Kind::File(d) = &n.kind {
            return Ok(d.clone());
        }
    }
    match find(k, np) {
        Found::Upper(_) => return Err(EISDIR),
        Found::Gone => {}
        Found::Host => match stat_path(k, np, false) {
            Ok(st) if st.mode & S_IFMT == S_IFDIR => return Err(EISDIR),
            Ok(st) => {
                let d = if trunc {
                    k.overlay.new_file(st.mode, st.mtime_ns)
                } else {
                    copy_up(k, np, &st)?
                };
                d.set_owner(st.uid, st.gid);
                k.overlay.insert(np.to_vec(), Kind::File(d.clone()), 0, 0);
                return Ok(d);
            }
            Err(e) if e != ENOENT => return Err(e),
            Err(_) => {}
        },
    }
    let Some(mode) = create else {
        return Err(ENOENT);
    };
    require_dir(k, parent(np))?;
    let d = k.overlay.new_file(mode, now(k));
    if in_shm(np) {
        // A tmpfs file: it takes seals, starting sealed against more (as Linux's shmem
        // files not made by memfd_create).
        d.allow_seals(crate::overlay::F_SEAL_SEAL);
    }
    k.overlay.insert(np.to_vec(), Kind::File(d.clone()), 0, 0);
    Ok(d)
}

/// A copy of the host file at `np` (of stat `st`) as overlay data.
fn copy_up(k: &Kernel, np: &[u8], st: &HostStat) -> Result<Rc<FileData>, Errno> {
    if st.mode & S_IFMT != S_IFREG {
        return Err(EINVAL);
    }
    if st.size > COPY_UP_MAX {
        return Err(crate::errno::EFBIG);
    }
    let data = k.overlay.new_file(st.mode, st.mtime_ns);
    let h = k.host.open(np, 0)?;
    let mut buf = alloc::vec![0u8; 64 << 10];
    let mut done = 0u64;
    let r = loop {
        if done >= st.size {
            break Ok(());
        }
        match k.host.pread(h, &mut buf, done) {
            Ok(0) => break Ok(()),
            Ok(n) => match data.write_at(done, &buf[..n as usize]) {
                Ok(_) => done += n,
                Err(e) => break Err(e),
            },
            Err(e) => break Err(e),
        }
    };
    k.host.close(h);
    r.map(|_| data)
}

/// What `open` did: opened a descriptor, or left a plain read-only open of this host path
/// (perhaps a symlink's target) to the caller.
pub enum Open {
    Fd(u64),
    Host(Vec<u8>),
    /// Write-through mode: open this host path for writing.
    Write(Vec<u8>),
}

/// `openat` when the overlay is involved: an overlay entry, a whited-out path, or a write.
/// `None`: a plain read-only open of a host path (the caller does it).
pub fn open<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    np: &[u8],
    flags: u64,
    mode: u64,
) -> Result<Open, Errno> {
    if is_link(k, np) {
        if flags & O_CREAT != 0 && flags & O_EXCL != 0 {
            return Err(EEXIST);
        }
        if flags & O_NOFOLLOW != 0 {
            return Err(crate::errno::ELOOP);
        }
        // The caller resolved the path ([`super::walk::resolve`]); a link here is followed
        // by walking it, which leaves none at the end.
        let target = super::walk::walk(k, np, true, &super::walk::no_own_links)?;
        if is_link(k, &target) {
            return Err(crate::errno::ELOOP);
        }
        return open(k, t, &target, flags, mode);
    }
    let write = flags & O_ACCMODE != 0 || flags & (O_TRUNC | O_CREAT) != 0;
    let found = find(k, np);
    if let Found::Upper(st) = &found {
        if flags & O_CREAT != 0 && flags & O_EXCL != 0 {
            return Err(EEXIST);
        }
        if st.mode & S_IFMT == S_IFDIR {
            if flags & O_ACCMODE != 0 {
                return Err(EISDIR);
            }
            return open_listing(k, t, np, flags).map(Open::Fd);
        }
        if flags & O_DIRECTORY != 0 {
            return Err(ENOTDIR);
        }
    }
    if matches!(found, Found::Host) && !write {
        // Reading a host path: a directory with overlay entries needs a merged listing.
        if !k.overlay.children(np).is_empty() {
            if let Ok(st) = stat_path(k, np, false) {
                if st.mode & S_IFMT == S_IFDIR {
                    return open_listing(k, t, np, flags).map(Open::Fd);
                }
            }
        }
        return Ok(Open::Host(np.to_vec()));
    }
    if matches!(found, Found::Gone) && flags & O_CREAT == 0 {
        return Err(ENOENT);
    }
    if !k.overlay.enabled && !in_shm(np) {
        return if !write {
            Ok(Open::Host(np.to_vec()))
        } else if through(k, np)? {
            Ok(Open::Write(np.to_vec()))
        } else {
            Err(EROFS)
        };
    }
    if flags & O_CREAT != 0
        && flags & O_EXCL != 0
        && !matches!(found, Found::Gone)
        && stat(k, np, true).is_ok()
    {
        return Err(EEXIST);
    }
    let create = (flags & O_CREAT != 0).then_some((mode as u32) & 0o7777 & !t.fs.lock().umask);
    let data = upper_file(k, np, create, flags & O_TRUNC != 0)?;
    if flags & O_TRUNC != 0 && flags & O_ACCMODE != 0 {
        data.set_len(0)?;
        data.modified(now(k));
    }
    let mut of = OpenFile::new(
        File::Mem {
            data,
            path: np.to_vec(),
            append: flags & O_APPEND != 0,
        },
        flags & O_NONBLOCK != 0,
    );
    of.access = flags & O_ACCMODE;
    install_fd(t, Rc::new(of), flags).map(Open::Fd)
}

/// A directory listing merging the host directory (if any) with the overlay's entries.
fn open_listing<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    np: &[u8],
    flags: u64,
) -> Result<u64, Errno> {
    // Each entry with the inode number its stat shows (`scandir`'s `inode()`, `find`).
    let ino = |p: &[u8]| stat(k, p, true).map_or(0, |st| st.ino);
    let mut names: Vec<(Vec<u8>, u8, u64)> = alloc::vec![
        (b".".to_vec(), 4, ino(np)),
        (b"..".to_vec(), 4, ino(parent(np))),
    ];
    let upper = k.overlay.children(np);
    if k.overlay.get(np).is_none_or(|n| !n.opaque()) {
        for (name, dtype, ino) in host_entries(k, np) {
            if !upper.iter().any(|(u, _)| *u == name) {
                names.push((name, dtype, ino));
            }
        }
    }
    for (name, node) in upper {
        let dtype = match node.kind {
            Kind::File(_) => 8,
            Kind::Dir => 4,
            Kind::Symlink(_) => 10,
            Kind::Whiteout => continue,
        };
        names.push((name, dtype, node.ino()));
    }
    let data = super::procfs::dirents_numbered(&names);
    // The descriptor is the directory: its stat is the one its path has (rmtree and `find`
    // compare the two to detect a directory swapped for a link).
    let at = stat(k, np, true).ok().map(|st| (np.to_vec(), st));
    let of = Rc::new(OpenFile::new(
        File::Synthetic {
            data,
            dir: true,
            at,
        },
        flags & O_NONBLOCK != 0,
    ));
    install_fd(t, of, flags)
}

/// The normalized absolute path at `addr`, with symlinks on the way to its last component
/// resolved as far as the host cannot (the last one is acted on, not followed).
fn path_arg<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    dirfd: u64,
    addr: u64,
) -> Result<Vec<u8>, Errno> {
    let p = t.mm.lock().read_cstr(addr, 4096)?;
    super::fs::sandbox_path(k, t, &absolute(t, dirfd, &p)?, false)
}

/// The path argument at `addr` (relative to `dirfd`) as the call acts on it: with a final
/// symlink followed if `follow` (the host's, and those made in the sandbox, which the host
/// cannot resolve).
pub(super) fn final_path<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    dirfd: u64,
    addr: u64,
    follow: bool,
) -> Result<Vec<u8>, Errno> {
    let p = t.mm.lock().read_cstr(addr, 4096)?;
    resolve_final(k, t, dirfd, &p, follow)
}

/// `path` (relative to `dirfd`) as a call acts on it: see [`final_path`].
fn resolve_final<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    dirfd: u64,
    path: &[u8],
    follow: bool,
) -> Result<Vec<u8>, Errno> {
    let np = super::fs::sandbox_path(k, t, &absolute(t, dirfd, path)?, follow)?;
    if follow && is_link(k, &np) {
        // A symlink made in the sandbox (the host resolves only its own).
        return super::walk::walk(k, &np, true, &super::walk::no_own_links);
    }
    Ok(np)
}

/// Write-through mode (`vmm run --rw`): `np` may be changed on the host — anything but the
/// Sentry's own `/dev`, `/proc` and `/sys`, which are not the host's to change.
pub(super) fn through(k: &Kernel, np: &[u8]) -> Result<bool, Errno> {
    if !k.config.write_through || in_shm(np) {
        return Ok(false);
    }
    if super::walk::sentry_owned(np) {
        return Err(EROFS);
    }
    Ok(true)
}

/// Whether `np` may be changed in the overlay: always under `/dev/shm`, elsewhere unless
/// the overlay is off (`--ro`; `--rw` wrote through before this is asked).
pub(super) fn writable(k: &Kernel, np: &[u8]) -> Result<(), Errno> {
    if k.overlay.enabled || in_shm(np) {
        Ok(())
    } else {
        Err(EROFS)
    }
}

/// Whether the directory `np` has no entries (host and overlay merged).
fn dir_empty(k: &Kernel, np: &[u8]) -> bool {
    if k.overlay
        .children(np)
        .iter()
        .any(|(_, n)| !matches!(n.kind, Kind::Whiteout))
    {
        return false;
    }
    if k.overlay.get(np).is_some_and(|n| n.opaque()) {
        return true;
    }
    host_entries(k, np)
        .iter()
        .all(|(name, _, _)| matches!(find(k, &[np, b"/", name].concat()), Found::Gone))
}

/// The host directory `np`'s entries (name, `d_type`, inode number) without `.` and `..`;
/// none if it is not a readable host directory.
fn host_entries(k: &Kernel, np: &[u8]) -> Vec<(Vec<u8>, u8, u64)> {
    let mut out = Vec::new();
    let Ok(h) = k.host.open(np, crate::abi::OPEN_DIRECTORY) else {
        return out;
    };
    let mut buf = alloc::vec![0u8; 32 << 10];
    while let Ok(n) = k.host.getdents(h, &mut buf) {
        if n == 0 {
            break;
        }
        let mut off = 0;
        let record = |off: usize| Dirent64::read_from_prefix(buf.get(off..n as usize)?).ok();
        while let Some((head, _)) = record(off) {
            let reclen = head.d_reclen as usize;
            let name = &buf[off + size_of::<Dirent64>()..off + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name != b"." && name != b".." {
                out.push((name.to_vec(), head.d_type, head.d_ino));
            }
            off += reclen.max(1);
        }
    }
    k.host.close(h);
    out
}

/// The target of the symlink at `np`: the overlay's, else the host's.
fn link_target(k: &Kernel, np: &[u8]) -> Result<Vec<u8>, Errno> {
    if let Some(l) = k.overlay.link(np) {
        return Ok(l.to_vec());
    }
    let mut target = alloc::vec![0u8; 4096];
    let n = k.host.readlink(np, &mut target)?;
    target.truncate(n as usize);
    Ok(target)
}

/// Removes `np` from the sandbox's view: drops its overlay entry, whites out a host one.
fn remove_entry(k: &mut Kernel, np: &[u8]) {
    k.overlay.remove(np);
    if stat_path(k, np, true).is_ok() {
        let t = now(k);
        k.overlay.insert(np.to_vec(), Kind::Whiteout, 0, t);
    }
}

/// `unlinkat(dirfd, path, flags)`; `unlink` and `rmdir` arrive here.
pub fn unlinkat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let np = path_arg(k, t, a[0], a[1])?;
    if k.unix.path(&np).is_some() {
        if a[2] & AT_REMOVEDIR != 0 {
            return Err(ENOTDIR);
        }
        k.unix.unlink(&np);
        return Ok(0);
    }
    if through(k, &np)? {
        let dir = a[2] & AT_REMOVEDIR != 0;
        k.host.modify(&HostOp::Unlink { path: &np, dir })?;
        return Ok(0);
    }
    let st = stat(k, &np, true)?;
    writable(k, &np)?;
    let is_dir = st.mode & S_IFMT == S_IFDIR;
    if a[2] & AT_REMOVEDIR != 0 {
        if !is_dir {
            return Err(ENOTDIR);
        }
        if !dir_empty(k, &np) {
            return Err(ENOTEMPTY);
        }
        // Also forget whiteouts below it.
        let below: Vec<Vec<u8>> = k
            .overlay
            .children(&np)
            .into_iter()
            .map(|(n, _)| [&np[..], b"/", &n].concat())
            .collect();
        for b in below {
            k.overlay.remove(&b);
        }
    } else if is_dir {
        return Err(EISDIR);
    }
    remove_entry(k, &np);
    Ok(0)
}

/// Whether a Unix socket may be bound at `np`: nothing there yet (EADDRINUSE), its
/// directory exists, and the tree is one the sandbox may write to.
pub(super) fn socket_file_check(k: &Kernel, np: &[u8]) -> Result<(), Errno> {
    if stat(k, np, true).is_ok() {
        return Err(crate::errno::EADDRINUSE);
    }
    if super::walk::sentry_owned(np) {
        return Err(crate::errno::EACCES);
    }
    require_dir(k, parent(np))
}

/// `mkdirat(dirfd, path, mode)`; `mkdir` arrives here.
pub fn mkdirat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let np = path_arg(k, t, a[0], a[1])?;
    let mode = (a[2] as u32) & 0o7777 & !t.fs.lock().umask;
    if through(k, &np)? {
        k.host.modify(&HostOp::Mkdir { path: &np, mode })?;
        return Ok(0);
    }
    if stat(k, &np, true).is_ok() {
        return Err(EEXIST);
    }
    writable(k, &np)?;
    require_dir(k, parent(&np))?;
    let now = now(k);
    k.overlay.insert(np, Kind::Dir, mode, now);
    Ok(0)
}

/// `mknodat(dirfd, path, mode, dev)`; `mknod` arrives here. Device nodes are EPERM: the
/// sandbox holds no `CAP_MKNOD`, as a container's root does not. A regular file (type 0 or
/// `S_IFREG`) is made as `open(O_CREAT|O_EXCL)` makes it. FIFOs and sockets need the VFS's
/// special files: EOPNOTSUPP until then.
pub fn mknodat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const S_IFCHR: u32 = 0o020000;
    const S_IFBLK: u32 = 0o060000;
    const S_IFIFO: u32 = 0o010000;
    const S_IFSOCK: u32 = 0o140000;
    let mode = a[2] as u32;
    match mode & S_IFMT {
        S_IFCHR | S_IFBLK => return Err(crate::errno::EPERM),
        S_IFIFO | S_IFSOCK => return Err(crate::errno::EOPNOTSUPP),
        0 | S_IFREG => {}
        _ => return Err(EINVAL),
    }
    let np = path_arg(k, t, a[0], a[1])?;
    if super::walk::sentry_owned(&np) {
        return Err(if stat(k, &np, true).is_ok() {
            EEXIST
        } else {
            crate::errno::EACCES
        });
    }
    let perm = mode & 0o7777 & !t.fs.lock().umask;
    if through(k, &np)? {
        let flags = O_CREAT | O_EXCL | O_WRONLY;
        let h = k.host.open_write(&np, flags, perm)?;
        k.host.close(h);
        return Ok(0);
    }
    if stat(k, &np, true).is_ok() {
        return Err(EEXIST);
    }
    writable(k, &np)?;
    upper_file(k, &np, Some(perm), false)?;
    Ok(0)
}

/// `renameat2(olddirfd, old, newdirfd, new, flags)`; `rename`/`renameat` arrive here, with
/// `RENAME_NOREPLACE` (EEXIST when `new` exists). Files and symlinks anywhere; directories the
/// sandbox made (the whole tree moves, onto nothing or an empty directory of its own): a
/// directory of the host's is EXDEV, as overlayfs without `redirect_dir` answers, and `mv`
/// copies instead. `RENAME_EXCHANGE`/`RENAME_WHITEOUT`: EINVAL (not supported here).
pub fn renameat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const RENAME_NOREPLACE: u64 = 1;
    if a[4] & !RENAME_NOREPLACE != 0 {
        return Err(EINVAL);
    }
    let noreplace = a[4] & RENAME_NOREPLACE != 0;
    let from = path_arg(k, t, a[0], a[1])?;
    let to = path_arg(k, t, a[2], a[3])?;
    if through(k, &from)? && through(k, &to)? {
        if noreplace && stat_path(k, &to, true).is_ok() {
            return Err(EEXIST);
        }
        k.host.modify(&HostOp::Rename {
            from: &from,
            to: &to,
        })?;
        return Ok(0);
    }
    let st = stat(k, &from, true)?;
    writable(k, &from)?;
    writable(k, &to)?;
    if in_shm(&from) != in_shm(&to) {
        return Err(EXDEV);
    }
    let dst = stat(k, &to, true).ok();
    if noreplace && dst.is_some() {
        return Err(EEXIST);
    }
    if from == to {
        return Ok(0);
    }
    let is_dir = |st: &HostStat| st.mode & S_IFMT == S_IFDIR;
    if is_dir(&st) {
        if to != from && crate::overlay::under(&to, &from) {
            // Into itself.
            return Err(EINVAL);
        }
        if let Some(d) = &dst {
            if !is_dir(d) {
                return Err(ENOTDIR);
            }
            if !dir_empty(k, &to) {
                return Err(ENOTEMPTY);
            }
        }
        require_dir(k, parent(&to))?;
        // Only trees that are the sandbox's alone (nothing of the host's at either name).
        if stat_path(k, &from, true).is_ok() || stat_path(k, &to, true).is_ok() {
            return Err(EXDEV);
        }
        k.overlay.move_tree(&from, &to);
        return Ok(0);
    }
    if dst.as_ref().is_some_and(is_dir) {
        return Err(EISDIR);
    }
    require_dir(k, parent(&to))?;
    if st.mode & S_IFMT == S_IFLNK {
        // A symlink moves as itself (its target unread, its times kept).
        let target = link_target(k, &from)?;
        remove_entry(k, &from);
        k.overlay
            .insert(to, Kind::Symlink(target), 0o777, st.mtime_ns);
        return Ok(0);
    }
    let data = upper_file(k, &from, None, false)?;
    remove_entry(k, &from);
    k.overlay.insert(to, Kind::File(data), 0, 0);
    Ok(0)
}

/// `truncate(path, len)`.
pub fn truncate<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let np = path_arg(k, t, AT_FDCWD as u64, a[0])?;
    if (a[1] as i64) < 0 {
        return Err(EINVAL);
    }
    if through(k, &np)? {
        k.host.modify(&HostOp::Truncate {
            path: &np,
            len: a[1],
        })?;
        return Ok(0);
    }
    stat(k, &np, false)?;
    writable(k, &np)?;
    let d = upper_file(k, &np, None, false)?;
    d.set_len(a[1])?;
    d.modified(now(k));
    Ok(0)
}

/// `ftruncate(fd, len)`.
pub fn ftruncate<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let of = file(t, a[0])?;
    if (a[1] as i64) < 0 {
        return Err(EINVAL);
    }
    match &of.file {
        File::Mem { data, .. } if of.writable() => {
            data.set_len(a[1])?;
            data.modified(now(k));
            Ok(0)
        }
        File::Host(h) if of.writable() => {
            k.host
                .handle_op(h.handle, crate::abi::HANDLE_FTRUNCATE, a[1])?;
            Ok(0)
        }
        File::Host(_) => Err(EINVAL), // opened read-only
        _ => Err(EBADF),
    }
}

/// `fchmodat(dirfd, path, mode)`; `chmod` arrives here. Host entries are copied up.
pub fn fchmodat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    // chmod follows a final symlink (the syscall has no flag to say otherwise).
    let np = final_path(k, t, a[0], a[1], true)?;
    set_mode(k, &np, a[2] as u32)
}

pub fn fchmod<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let of = file(t, a[0])?;
    let path = match &of.file {
        // The descriptor's inode, wherever (and whether) it is linked.
        File::Mem { data, .. } => {
            data.set_mode(a[1] as u32);
            return Ok(0);
        }
        File::Host(h) => h.path.clone(),
        _ => return Err(EINVAL),
    };
    set_mode(k, &path, a[1] as u32)
}

fn set_mode(k: &mut Kernel, np: &[u8], mode: u32) -> SysResult {
    if through(k, np)? {
        k.host.modify(&HostOp::Chmod { path: np, mode })?;
        return Ok(0);
    }
    let st = stat(k, np, false)?;
    writable(k, np)?;
    // (A host directory keeps its times: chmod changes only the ctime, as on Linux.)
    upper_for_metadata(k, np, &st)?;
    if let Some(n) = k.overlay.get_mut(np) {
        n.set_mode(mode);
    }
    Ok(0)
}

/// An overlay entry at `np` (of stat `st`, as `lstat` says) for a change of its metadata: a
/// host directory is shadowed by one that shows the host's entries through it, a host
/// symlink is copied up (its target as it reads), a host file is copied up; each keeps the
/// host's mode, times and owner.
pub(super) fn upper_for_metadata(k: &mut Kernel, np: &[u8], st: &HostStat) -> Result<(), Errno> {
    if k.overlay.get(np).is_some() {
        return Ok(());
    }
    match st.mode & S_IFMT {
        S_IFDIR => {
            k.overlay
                .insert(np.to_vec(), Kind::Dir, st.mode & 0o7777, st.mtime_ns);
            if let Some(n) = k.overlay.get_mut(np) {
                n.merge_with_host();
            }
        }
        S_IFLNK => {
            let target = link_target(k, np)?;
            k.overlay
                .insert(np.to_vec(), Kind::Symlink(target), 0o777, st.mtime_ns);
        }
        _ => {
            upper_file(k, np, None, false)?;
        }
    }
    if let Some(n) = k.overlay.get_mut(np) {
        n.set_owner(st.uid, st.gid);
    }
    Ok(())
}

/// `utimensat(dirfd, path, times, flags)`: sets the modification time of an overlay entry (host
/// files are copied up).
pub fn utimensat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    const AT_EMPTY_PATH: u64 = 0x1000;
    if a[3] & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let path = match a[1] {
        0 => None,
        addr => Some(t.mm.lock().read_cstr(addr, 4096)?),
    };
    let nofollow = path.is_some() && a[3] & AT_SYMLINK_NOFOLLOW != 0;
    let mut inode = None;
    let np = match path {
        // futimens (a NULL path, or an empty one with AT_EMPTY_PATH): the descriptor's file.
        None => descriptor_path(t, a[0], &mut inode)?,
        Some(p) if p.is_empty() && a[3] & AT_EMPTY_PATH != 0 => {
            descriptor_path(t, a[0], &mut inode)?
        }
        Some(p) => resolve_final(k, t, a[0], &p, !nofollow)?,
    };
    // [atime sec, nsec, mtime sec, nsec]; each nsec in range or UTIME_NOW/UTIME_OMIT.
    let mut times = [0, UTIME_NOW, 0, UTIME_NOW];
    if a[2] != 0 {
        let [at, mt]: [Timespec; 2] = t.mm.lock().read_obj(a[2])?;
        times = [at.tv_sec, at.tv_nsec, mt.tv_sec, mt.tv_nsec];
        for nsec in [times[1], times[3]] {
            if !(0..1_000_000_000).contains(&nsec) && nsec != UTIME_NOW && nsec != UTIME_OMIT {
                return Err(EINVAL);
            }
        }
    }
    if inode.is_none() && through(k, &np)? {
        k.host.modify(&HostOp::Utimens {
            path: &np,
            times,
            nofollow,
        })?;
        return Ok(0);
    }
    let stamp = now(k);
    // Each time: as given, now (UTIME_NOW), or left alone (UTIME_OMIT). Out-of-range times
    // are clamped, as filesystems clamp them to what they store.
    let pick = |sec: i64, nsec: i64| match nsec {
        UTIME_OMIT => None,
        UTIME_NOW => Some(stamp),
        nsec => Some(sec.saturating_mul(1_000_000_000).saturating_add(nsec)),
    };
    let (atime, mtime) = (pick(times[0], times[1]), pick(times[2], times[3]));
    if atime.is_none() && mtime.is_none() {
        // Nothing to change (Linux does not even look at the file's permissions).
        return Ok(0);
    }
    if let Some(d) = inode {
        d.set_times(atime, mtime, stamp);
        return Ok(0);
    }
    let st = stat(k, &np, nofollow)?;
    writable(k, &np)?;
    upper_for_metadata(k, &np, &st)?;
    if let Some(n) = k.overlay.get_mut(&np) {
        n.set_times(atime, mtime, stamp);
    }
    Ok(0)
}

/// The path of descriptor `fd`'s file for a `*at` call on the descriptor itself; an overlay
/// file (linked or not) is its inode, put in `inode`.
fn descriptor_path<P: Platform>(
    t: &mut Task<P>,
    fd: u64,
    inode: &mut Option<Rc<FileData>>,
) -> Result<Vec<u8>, Errno> {
    let of = file(t, fd)?;
    match &of.file {
        File::Mem { data, .. } => {
            *inode = Some(data.clone());
            Ok(Vec::new())
        }
        File::Host(h) => Ok(h.path.clone()),
        _ => Err(EINVAL),
    }
}

/// `fchownat`/`chown`/`lchown`: the sandbox runs as root, so any owner may be given. In the
/// overlay the change is recorded (a host entry is copied up first, keeping its owner until
/// then), with Linux's side effects (set-ID bits of a non-directory dropped, the status
/// time); written through (`--rw`) it is made on the host. -1 leaves an id alone.
pub fn chown_path<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    dirfd: u64,
    path: u64,
    owner: (u64, u64),
    nofollow: bool,
) -> SysResult {
    let np = final_path(k, t, dirfd, path, !nofollow)?;
    chown_at(k, &np, owner, nofollow)
}

/// `fchown(fd, uid, gid)`: the descriptor's file (an overlay file wherever, and whether, it
/// is linked).
pub fn fchown<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let of = file(t, a[0])?;
    let path = match &of.file {
        File::Mem { data, .. } => {
            let now = now(k);
            data.chown(id_arg(a[1]), id_arg(a[2]), now);
            return Ok(0);
        }
        File::Host(h) => h.path.clone(),
        File::Synthetic {
            at: Some((p, _)), ..
        } => p.clone(),
        // Pipes, sockets and the Sentry's own files: accepted, as root may.
        _ => return Ok(0),
    };
    chown_at(k, &path, (a[1], a[2]), false)
}

/// An id argument of `chown`: -1 (as a 32-bit value) leaves it alone.
fn id_arg(id: u64) -> Option<u32> {
    (id as u32 != u32::MAX).then_some(id as u32)
}

fn chown_at(k: &mut Kernel, np: &[u8], owner: (u64, u64), nofollow: bool) -> SysResult {
    if through(k, np)? {
        k.host.modify(&HostOp::Chown {
            path: np,
            uid: owner.0 as u32,
            gid: owner.1 as u32,
            nofollow,
        })?;
        return Ok(0);
    }
    let st = stat(k, np, nofollow)?;
    if st.mode & S_IFMT == S_IFSOCK && k.overlay.get(np).is_none() {
        return Ok(0); // a bound socket's path (no overlay node to record it on yet)
    }
    writable(k, np)?;
    upper_for_metadata(k, np, &st)?;
    let now = now(k);
    if let Some(n) = k.overlay.get_mut(np) {
        n.chown(id_arg(owner.0), id_arg(owner.1), now);
    }
    Ok(0)
}

/// Reads and writes of an overlay file's descriptor, in bounded steps (whatever length the app
/// names): at `at`, or at the file position (the end for an `O_APPEND` write), which follows.
pub fn mem_rw<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    iov: &[(u64, u64)],
    to_app: bool,
    at: Option<u64>,
) -> SysResult {
    const STEP: u64 = 64 << 10;
    let File::Mem { data, append, .. } = &of.file else {
        return Err(EBADF);
    };
    let append = *append;
    if to_app && !of.readable() || !to_app && !of.writable() {
        return Err(EBADF);
    }
    let mut pos = at.unwrap_or(of.offset.get());
    if !to_app && append {
        // O_APPEND: at the end, even for pwrite (Linux's behaviour; the file position stays).
        pos = data.len();
    }
    let mut done = 0u64;
    let mut chunk = Vec::new();
    'iov: for &(base, len) in iov {
        let len = len.min(0x7fff_f000);
        let mut off = 0;
        while off < len {
            let n = (len - off).min(STEP);
            let at = pos.checked_add(done).ok_or(crate::errno::EFBIG)?;
            let r = if to_app {
                let n = n.min(data.len().saturating_sub(at));
                if n == 0 {
                    break 'iov;
                }
                chunk.resize(n as usize, 0);
                data.read_at(at, &mut chunk);
                t.mm.lock().copy_out(base + off, &chunk).map(|_| n)
            } else {
                chunk.resize(n as usize, 0);
                t.mm.lock()
                    .copy_in(base + off, &mut chunk)
                    .and_then(|_| data.write_at(at, &chunk))
                    .map(|w| w as u64)
            };
            match r {
                Ok(m) => {
                    done += m;
                    off += m;
                    if m < n {
                        // A short write (a grow seal): the rest would be refused.
                        break 'iov;
                    }
                }
                // Linux reports what was transferred before a fault or a full file.
                Err(e) if done == 0 => return Err(e),
                Err(_) => break 'iov,
            }
        }
    }
    if at.is_none() {
        of.offset.set(pos + done);
    }
    if !to_app && done > 0 {
        data.modified(now(k));
    }
    Ok(done)
}

/// `symlinkat(target, newdirfd, linkpath)`; `symlink` arrives here.
pub fn symlinkat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let target = t.mm.lock().read_cstr(a[0], 4096)?;
    if target.is_empty() {
        return Err(ENOENT);
    }
    let np = path_arg(k, t, a[1], a[2])?;
    if through(k, &np)? {
        k.host.modify(&HostOp::Symlink {
            target: &target,
            path: &np,
        })?;
        return Ok(0);
    }
    if stat(k, &np, true).is_ok() {
        return Err(EEXIST);
    }
    writable(k, &np)?;
    require_dir(k, parent(&np))?;
    let now = now(k);
    k.overlay.remove(&np);
    k.overlay.insert(np, Kind::Symlink(target), 0o777, now);
    Ok(0)
}

/// `linkat(olddirfd, old, newdirfd, new, flags)`; `link` arrives here. A hard link in the
/// overlay names the same inode ([`FileData`]); a host file is copied up first, and is one
/// inode from then on. Directories cannot be linked (EPERM), nor files across `/dev/shm`'s
/// border or a memfd (EXDEV: another filesystem). `AT_EMPTY_PATH` links the descriptor's file
/// (ENOENT once it has no name left, as for an unlinked file).
pub fn linkat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const AT_SYMLINK_FOLLOW: u64 = 0x400;
    const AT_EMPTY_PATH: u64 = 0x1000;
    if a[4] & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let old = t.mm.lock().read_cstr(a[1], 4096)?;
    let to = path_arg(k, t, a[2], a[3])?;
    let from = if old.is_empty() && a[4] & AT_EMPTY_PATH != 0 {
        let of = file(t, a[0])?;
        match &of.file {
            File::Mem { data, .. } if data.is_memfd() => return Err(EXDEV),
            File::Mem { data, .. } if data.nlink() == 0 => return Err(ENOENT),
            File::Mem { path, .. } => path.clone(),
            File::Host(h) if h.dir => return Err(crate::errno::EPERM),
            File::Host(h) => h.path.clone(),
            _ => return Err(ENOENT),
        }
    } else {
        let follow = a[4] & AT_SYMLINK_FOLLOW != 0;
        let np = super::fs::sandbox_path(k, t, &absolute(t, a[0], &old)?, follow)?;
        if follow && is_link(k, &np) {
            // A symlink made in the sandbox (the host resolves only its own).
            super::walk::walk(k, &np, true, &super::walk::no_own_links)?
        } else {
            np
        }
    };
    if through(k, &from)? && through(k, &to)? {
        k.host.modify(&HostOp::Link {
            from: &from,
            to: &to,
        })?;
        return Ok(0);
    }
    let st = stat(k, &from, true)?;
    if stat(k, &to, true).is_ok() {
        return Err(EEXIST);
    }
    writable(k, &from)?;
    writable(k, &to)?;
    // Another filesystem whatever the file's type (Linux checks the mounts before the type).
    if in_shm(&from) != in_shm(&to) {
        return Err(EXDEV);
    }
    match st.mode & S_IFMT {
        S_IFDIR => return Err(crate::errno::EPERM),
        S_IFREG => {}
        // A symlink's link is a symlink to the same target (not the same inode).
        S_IFLNK => {
            let target = link_target(k, &from)?;
            require_dir(k, parent(&to))?;
            let t = now(k);
            k.overlay.insert(to, Kind::Symlink(target), 0o777, t);
            return Ok(0);
        }
        _ => return Err(crate::errno::EPERM),
    }
    require_dir(k, parent(&to))?;
    let data = upper_file(k, &from, None, false)?;
    k.overlay.insert(to, Kind::File(data), 0, 0);
    Ok(0)
}

/// `memfd_create(name, flags)`: an anonymous tmpfs file (mode 0777, as Linux's), named
/// `memfd:NAME` in `/proc/self/fd`, sealable with `MFD_ALLOW_SEALING`. The flags are 6.1's
/// (the kernel `uname` reports): `MFD_EXEC`/`MFD_NOEXEC_SEAL` are EINVAL, as there.
pub fn memfd_create<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    use crate::overlay::F_SEAL_SEAL;
    use linux_raw_sys::general::{
        MFD_ALLOW_SEALING, MFD_CLOEXEC, MFD_HUGETLB, MFD_HUGE_MASK, MFD_HUGE_SHIFT,
    };
    /// NAME_MAX less "memfd:".
    const NAME_MAX: usize = 249;
    let flags = u32::try_from(a[1]).map_err(|_| EINVAL)?;
    let known = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB;
    let huge = flags & (MFD_HUGE_MASK << MFD_HUGE_SHIFT);
    if flags & !(known | huge) != 0 || (huge != 0 && flags & MFD_HUGETLB == 0) {
        return Err(EINVAL);
    }
    if flags & MFD_HUGETLB != 0 {
        // The sandbox has no huge pages to give a hugetlbfs file.
        return Err(EINVAL);
    }
    let name = match t.mm.lock().read_cstr(a[0], NAME_MAX) {
        Err(crate::errno::ENAMETOOLONG) => return Err(EINVAL),
        r => r?,
    };
    let (mode, seals) = if flags & MFD_ALLOW_SEALING != 0 {
        (0o777, 0)
    } else {
        (0o777, F_SEAL_SEAL)
    };
    let data = k.overlay.new_memfd(mode, now(k), seals);
    let path = [&b"/memfd:"[..], &name, b" (deleted)"].concat();
    let of = OpenFile::new(
        File::Mem {
            data,
            path,
            append: false,
        },
        false,
    );
    let cloexec = if flags & MFD_CLOEXEC != 0 {
        O_CLOEXEC
    } else {
        0
    };
    install_fd(t, Rc::new(of), cloexec)
}
