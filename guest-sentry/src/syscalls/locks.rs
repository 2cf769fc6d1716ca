//! Advisory lock syscalls ([`crate::locks`]): `fcntl`'s record locks (`F_GETLK`, `F_SETLK`,
//! `F_SETLKW` and their `F_OFD_*` kin) and `flock`. A lock that cannot be had now makes
//! `F_SETLKW` and a blocking `flock` wait (retried as other tasks release locks); a signal
//! interrupts the wait.

use alloc::rc::Rc;
use alloc::vec::Vec;

use super::io::file;
use crate::errno::{Errno, SysResult, EAGAIN, EBADF, EINVAL};
use crate::file::OpenFile;
use crate::kernel::{Kernel, Task};
use crate::linux::Flock;
use crate::locks::{FileKey, Owner};
use crate::platform::Platform;

pub(super) const F_GETLK: u64 = 5;
pub(super) const F_SETLK: u64 = 6;
pub(super) const F_SETLKW: u64 = 7;
pub(super) const F_OFD_GETLK: u64 = 36;
pub(super) const F_OFD_SETLK: u64 = 37;
pub(super) const F_OFD_SETLKW: u64 = 38;

const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;

/// The file a descriptor's locks are on.
fn key_of<P: Platform>(k: &mut Kernel, t: &Task<P>, fd: u64) -> Result<FileKey, Errno> {
    let st = super::fs::fd_stat(k, t, fd)?;
    Ok((st.dev, st.ino))
}

/// `fcntl(fd, F_*LK*, struct flock *)`.
pub(super) fn record_lock<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    fd: u64,
    cmd: u64,
    arg: u64,
) -> SysResult {
    let of = file(t, fd)?;
    let fl: Flock = t.mm.lock().read_obj(arg)?;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && fl.l_pid != 0 {
        return Err(EINVAL);
    }
    let kind = match fl.l_type {
        F_RDLCK => Some(false),
        F_WRLCK => Some(true),
        F_UNLCK => None,
        _ => return Err(EINVAL),
    };
    let key = key_of(k, t, fd)?;
    // The range: from l_start relative to l_whence, l_len bytes (0: to the end of the file,
    // whatever it becomes; negative: the bytes before).
    let base: i64 = match fl.l_whence {
        0 => 0,
        1 => of.offset.get() as i64,
        2 => super::fs::fd_stat(k, t, fd)?.size as i64,
        _ => return Err(EINVAL),
    };
    let mut start = base.checked_add(fl.l_start).ok_or(EINVAL)?;
    let end: u64 = if fl.l_len > 0 {
        let last = start
            .checked_add(fl.l_len - 1)
            .ok_or(crate::errno::EOVERFLOW)?;
        last as u64
    } else if fl.l_len == 0 {
        u64::MAX
    } else {
        let s = start.checked_add(fl.l_len).ok_or(EINVAL)?;
        let e = start - 1;
        start = s;
        e as u64
    };
    if start < 0 {
        return Err(EINVAL);
    }
    let start = start as u64;
    let owner = if ofd {
        Owner::Description(Rc::downgrade(&of))
    } else {
        Owner::Process(t.pid)
    };
    if matches!(cmd, F_GETLK | F_OFD_GETLK) {
        let Some(write) = kind else {
            return Err(EINVAL);
        };
        let mut out = fl;
        match k.locks.conflict(key, &owner, start, end, write) {
            Some(c) => {
                out.l_type = if c.write { F_WRLCK } else { F_RDLCK };
                out.l_whence = 0;
                out.l_start = c.start as i64;
                out.l_len = if c.end == u64::MAX {
                    0
                } else {
                    (c.end - c.start + 1) as i64
                };
                out.l_pid = c.pid;
            }
            None => out.l_type = F_UNLCK,
        }
        t.mm.lock().write_obj(arg, &out)?;
        return Ok(0);
    }
    match kind {
        Some(false) if !of.readable() => return Err(EBADF),
        Some(true) if !of.writable() => return Err(EBADF),
        _ => {}
    }
    if let Some(write) = kind {
        if k.locks.conflict(key, &owner, start, end, write).is_some() {
            if matches!(cmd, F_SETLK | F_OFD_SETLK) {
                return Err(EAGAIN);
            }
            t.request = Some(crate::sched::Request::Block);
            return Ok(0);
        }
    }
    k.locks.set(key, owner, start, end, kind);
    Ok(0)
}

/// `flock(fd, operation)`.
pub fn flock<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const LOCK_SH: u64 = 1;
    const LOCK_EX: u64 = 2;
    const LOCK_NB: u64 = 4;
    const LOCK_UN: u64 = 8;
    let of = file(t, a[0])?;
    let op = a[1] as u32 as u64;
    let key = key_of(k, t, a[0])?;
    match op & !LOCK_NB {
        LOCK_UN => {
            k.locks.funlock(key, &of);
            Ok(0)
        }
        LOCK_SH | LOCK_EX => {
            if k.locks.flock(key, &of, op & LOCK_EX != 0) {
                return Ok(0);
            }
            if op & LOCK_NB != 0 {
                return Err(EAGAIN);
            }
            t.request = Some(crate::sched::Request::Block);
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

/// The files of `t`'s close-on-exec descriptors where its process holds POSIX locks (an
/// `execve` closes them: [`crate::sched::Exec::cloexec_locks`]).
pub(super) fn cloexec_keys<P: Platform>(k: &mut Kernel, t: &Task<P>) -> Vec<FileKey> {
    if !k.locks.holds_any(t.pid) {
        return Vec::new();
    }
    let fds: Vec<u64> = t.files.get().cloexec.iter().copied().collect();
    fds.into_iter()
        .filter_map(|fd| key_of(k, t, fd).ok())
        .collect()
}

/// Process `t` closes descriptor `of` (`fd`, still open): its POSIX locks on the file go,
/// as Linux drops them at any close of the file by the process, and those waiting for a lock
/// there try again (the description's OFD and flock locks go with its last descriptor).
pub(super) fn closing<P: Platform>(k: &mut Kernel, t: &Task<P>, fd: u64, _of: &OpenFile) {
    if !k.locks.any() {
        return;
    }
    if let Ok(key) = key_of(k, t, fd) {
        k.locks.release_file(key, t.pid);
    }
}
