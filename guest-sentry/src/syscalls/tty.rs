//! Pseudo-terminal syscalls ([`crate::tty`]): opening `/dev/ptmx` and `/dev/pts/N`, reads and
//! writes of either end, the terminal ioctls, stat, and the controlling terminal (`TIOCSCTTY`,
//! `TIOCNOTTY`, foreground groups, job control: a background process that reads its
//! controlling terminal gets SIGTTIN, one that writes it under `TOSTOP` or changes its modes
//! gets SIGTTOU).

use alloc::rc::Rc;
use alloc::vec::Vec;

use super::flags::{O_ACCMODE, O_CLOEXEC, O_DIRECTORY, O_NONBLOCK};
use super::io::{wait_or_eagain, walk_iov, MAX_RW_COUNT};
use crate::abi::HostStat;
use crate::errno::{SysResult, EAGAIN, EBADF, EINVAL, EIO, ENOTTY, EPERM};
use crate::file::{File, OpenFile};
use crate::kernel::{Kernel, Task};
use crate::linux::{Termios, Winsize};
use crate::platform::Platform;
use crate::signal;
use crate::signo::{SIGTTIN, SIGTTOU};
use crate::tty::{Input, Pty, PtyEnd, PtyRef, Target, TOSTOP, VMIN, VTIME};

pub(super) const O_NOCTTY: u64 = linux_raw_sys::general::O_NOCTTY as u64;

/// `/dev/ptmx`'s device number (5, 2).
pub(super) const PTMX_RDEV: u64 = (5 << 8) | 2;
/// The `st_dev` of `/dev/pts` (devpts).
const DEVPTS_DEV: u64 = 0x19;
/// The most one read or write of a pty moves.
const CHUNK: u64 = 65536;

/// `/dev/pts/N`'s device number (136 + N / 256, N % 256), encoded as `st_rdev` is.
fn pts_rdev(n: u32) -> u64 {
    let (major, minor) = (136 + (n as u64 >> 8), n as u64 & 0xff);
    ((major & 0xfff) << 8) | minor | ((major & !0xfff) << 32)
}

/// The stat of `/dev/pts/N`, by path or descriptor alike (`ttyname` compares them).
pub(super) fn replica_stat(p: &Pty) -> HostStat {
    HostStat {
        mode: 0o020600, // S_IFCHR | rw------- (devpts's default mode)
        nlink: 1,
        uid: p.uid,
        gid: p.gid,
        rdev: pts_rdev(p.index),
        ino: p.index as u64 + 3,
        dev: DEVPTS_DEV,
        blksize: 1024,
        atime_ns: p.time_ns as i64,
        mtime_ns: p.time_ns as i64,
        ctime_ns: p.time_ns as i64,
        ..Default::default()
    }
}

/// `/dev/ptmx` (and `/dev/pts/ptmx`): its stat.
pub(super) fn ptmx_stat() -> HostStat {
    HostStat {
        mode: 0o020666,
        nlink: 1,
        rdev: PTMX_RDEV,
        ino: 2,
        dev: 0x5,
        blksize: 4096,
        ..Default::default()
    }
}

/// `/dev/tty` (5, 0): its stat, by path or descriptor.
pub(super) fn dev_tty_stat() -> HostStat {
    HostStat {
        rdev: 5 << 8,
        ino: 3,
        ..ptmx_stat()
    }
}

/// The stat of an open pty end.
pub(super) fn end_stat(end: &PtyEnd) -> HostStat {
    if end.as_tty {
        dev_tty_stat()
    } else if end.master {
        ptmx_stat()
    } else {
        replica_stat(&end.pty.borrow())
    }
}

fn install<P: Platform>(t: &mut Task<P>, end: PtyEnd, flags: u64) -> SysResult {
    let mut of = OpenFile::new(File::Pty(end), flags & O_NONBLOCK != 0);
    of.access = flags & O_ACCMODE;
    super::fs::install_fd(t, Rc::new(of), flags)
}

/// `open("/dev/ptmx")`: a new pty, locked until `unlockpt` (`TIOCSPTLCK`); its master end.
pub(super) fn open_ptmx<P: Platform>(k: &mut Kernel, t: &mut Task<P>, flags: u64) -> SysResult {
    if flags & O_DIRECTORY != 0 {
        return Err(crate::errno::ENOTDIR);
    }
    let ids = crate::kernel::SANDBOX_IDS;
    let end = k.ptys.open_master(ids[1], ids[3])?;
    end.pty.borrow_mut().time_ns = k.host.now(crate::host::Clock::Realtime);
    install(t, end, flags)
}

/// `open("/dev/pts/N")` (and `/dev/tty` of a pty): another replica end. Without
/// `O_NOCTTY`, a session leader with no controlling terminal takes this one.
pub(super) fn open_replica<P: Platform>(t: &mut Task<P>, pty: &PtyRef, flags: u64) -> SysResult {
    open_replica_as(t, pty, flags, false)
}

fn open_replica_as<P: Platform>(
    t: &mut Task<P>,
    pty: &PtyRef,
    flags: u64,
    as_tty: bool,
) -> SysResult {
    if flags & O_DIRECTORY != 0 {
        return Err(crate::errno::ENOTDIR);
    }
    if pty.borrow().exclusive && crate::kernel::SANDBOX_IDS[1] != 0 {
        return Err(crate::errno::EBUSY);
    }
    let mut end = PtyEnd::open_replica(pty)?;
    end.as_tty = as_tty;
    if flags & O_NOCTTY == 0 {
        let (leader, sid, pgid) = {
            let g = t.tg.get();
            (g.sid == t.pid, g.sid, g.pgid)
        };
        if leader && controlling(t).is_none() && pty.borrow().sid == 0 {
            take_controlling(t, pty, sid, pgid);
        }
    }
    install(t, end, flags)
}

/// `/dev/tty` when the caller's controlling terminal is a pty: that pty's replica; `None`
/// when it has none (the host terminal's case).
pub(super) fn open_controlling<P: Platform>(t: &mut Task<P>, flags: u64) -> Option<SysResult> {
    let pty = controlling(t)?;
    Some(open_replica_as(t, &pty, flags | O_NOCTTY, true))
}

/// The caller's controlling terminal, if it is a pty that is still its session's.
fn controlling<P: Platform>(t: &Task<P>) -> Option<PtyRef> {
    crate::tty::controlling(&t.tg.get())
}

fn take_controlling<P: Platform>(t: &mut Task<P>, pty: &PtyRef, sid: u32, pgid: u32) {
    let mut p = pty.borrow_mut();
    p.sid = sid;
    p.fg_pgid = pgid;
    drop(p);
    t.tg.lock().ctty = Some(pty.clone());
}

/// Whether the caller may go on with an operation on `pty` that a background process of
/// its session may not do (`tty_check_change`, and reads): `Ok(true)` to go on; `Ok(false)`
/// when `sig` went to its process group and it waits (to try again once continued); EIO
/// when the signal is ignored or blocked where Linux says so (`eio_if_ignored`: a read).
fn job_control<P: Platform>(
    t: &mut Task<P>,
    pty: &PtyRef,
    sig: i32,
    eio_if_ignored: bool,
) -> Result<bool, crate::errno::Errno> {
    let Some(ctty) = controlling(t) else {
        return Ok(true);
    };
    if !Rc::ptr_eq(&ctty, pty) {
        return Ok(true);
    }
    let pgid = t.tg.get().pgid;
    let fg = pty.borrow().fg_pgid;
    if fg == 0 || fg == pgid {
        return Ok(true);
    }
    let ignored = t.sighand.get()[(sig - 1) as usize].handler == signal::SIG_IGN
        || t.signals.blocked & signal::bit(sig) != 0;
    if ignored {
        return if eio_if_ignored { Err(EIO) } else { Ok(true) };
    }
    pty.borrow().send_signal(Target::Group(pgid), sig);
    t.request = Some(crate::sched::Request::Block);
    Ok(false)
}

/// Copies `data` out to `iov`; what could not be copied is handed back to `unread`.
fn copy_out<P: Platform>(
    t: &mut Task<P>,
    iov: &[(u64, u64)],
    data: &[u8],
    unread: impl FnOnce(&[u8]),
) -> SysResult {
    let done = walk_iov(iov, data.len() as u64, |base, r| {
        t.mm.lock().copy_out(base, &data[r])
    });
    let moved = *done.as_ref().unwrap_or(&0) as usize;
    if moved < data.len() {
        unread(&data[moved..]);
    }
    done
}

/// The bytes of `iov` a write offers (at most [`CHUNK`]).
fn gather<P: Platform>(
    t: &mut Task<P>,
    iov: &[(u64, u64)],
    want: u64,
) -> Result<Vec<u8>, crate::errno::Errno> {
    let n = want.min(CHUNK);
    let mut buf = alloc::vec![0u8; n as usize];
    let done = walk_iov(iov, n, |base, r| t.mm.lock().copy_in(base, &mut buf[r]))?;
    buf.truncate(done as usize);
    Ok(buf)
}

/// A read (`to_app`) or write of a pty end.
pub(super) fn rw<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    end: &PtyEnd,
    iov: &[(u64, u64)],
    to_app: bool,
) -> SysResult {
    if !(if to_app { of.readable() } else { of.writable() }) {
        return Err(EBADF);
    }
    let want: u64 = iov.iter().map(|v| v.1).sum::<u64>().min(MAX_RW_COUNT);
    if want == 0 {
        return Ok(0);
    }
    let pty = &end.pty;
    match (end.master, to_app) {
        (true, true) => {
            let data = pty.borrow_mut().read_output(want.min(CHUNK) as usize);
            if data.is_empty() {
                if pty.borrow().replica_gone() {
                    return Err(EIO);
                }
                return wait_or_eagain(t, of);
            }
            copy_out(t, iov, &data, |rest| pty.borrow_mut().unread_output(rest))
        }
        (true, false) => {
            if !pty.borrow().input_room() {
                return wait_or_eagain(t, of);
            }
            let buf = gather(t, iov, want)?;
            Ok(pty.borrow_mut().write_input(&buf) as u64)
        }
        (false, true) => {
            if pty.borrow().hung_up() {
                return Ok(0);
            }
            if !job_control(t, pty, SIGTTIN, true)? {
                return Ok(0);
            }
            if !pty.borrow().canonical() && !raw_ready(k, t, of, pty, want)? {
                return Ok(0);
            }
            t.wake_at = None;
            let got = pty.borrow_mut().read_input(want.min(CHUNK) as usize);
            match got {
                Input::Data(data) => {
                    copy_out(t, iov, &data, |rest| pty.borrow_mut().unread_input(rest))
                }
                Input::Eof => Ok(0),
                Input::Empty if pty.borrow().canonical() => wait_or_eagain(t, of),
                // Non-canonical with VMIN 0: nothing came (in VTIME).
                Input::Empty => Ok(0),
            }
        }
        (false, false) => {
            if pty.borrow().hung_up() {
                return Err(EIO);
            }
            let tostop = pty.borrow().termios.c_lflag & TOSTOP != 0;
            if tostop && !job_control(t, pty, SIGTTOU, false)? {
                return Ok(0);
            }
            if !pty.borrow().output_room() {
                return wait_or_eagain(t, of);
            }
            let buf = gather(t, iov, want)?;
            match pty.borrow_mut().write_output(&buf) {
                Some(n) => Ok(n as u64),
                None => Ok(0),
            }
        }
    }
}

/// Whether a non-canonical replica read of `want` bytes may take what there is now, by
/// `VMIN` and `VTIME` (Linux's `n_tty_read`): `Ok(false)` when it waits (the task blocks,
/// or EAGAIN for a non-blocking descriptor). The inter-byte timer of `VMIN` > 0 with
/// `VTIME` > 0 runs from the first retry that finds some input.
fn raw_ready<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    pty: &PtyRef,
    want: u64,
) -> Result<bool, crate::errno::Errno> {
    let (vmin, vtime, avail) = {
        let p = pty.borrow();
        (
            p.termios.c_cc[VMIN] as u64,
            p.termios.c_cc[VTIME] as u64,
            p.raw_len() as u64,
        )
    };
    let minimum = vmin.min(want);
    let timeout = vtime * 100_000_000;
    let nonblock = of.nonblock.get();
    let wait = |t: &mut Task<P>| -> Result<bool, crate::errno::Errno> {
        if nonblock {
            return Err(EAGAIN);
        }
        t.request = Some(crate::sched::Request::Block);
        Ok(false)
    };
    if avail >= minimum.max(1) {
        return Ok(true);
    }
    match (vmin, vtime) {
        // Polling read: whatever there is, EAGAIN for a non-blocking descriptor.
        (0, 0) => {
            if nonblock {
                return Err(EAGAIN);
            }
            Ok(true)
        }
        (_, 0) => wait(t),
        (0, _) => {
            if nonblock {
                return Err(EAGAIN);
            }
            // Up to VTIME for the first byte; then the read returns 0.
            Ok(super::events::block(k, t, Some(timeout), None))
        }
        _ if avail == 0 => wait(t),
        _ => {
            if nonblock {
                return Ok(true);
            }
            Ok(super::events::block(k, t, Some(timeout), None))
        }
    }
}

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCEXCL: u64 = 0x540c;
const TIOCNXCL: u64 = 0x540d;
const TIOCSCTTY: u64 = 0x540e;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCOUTQ: u64 = 0x5411;
const TIOCSTI: u64 = 0x5412;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const TIOCNOTTY: u64 = 0x5422;
const TIOCSETD: u64 = 0x5423;
const TIOCGETD: u64 = 0x5424;
const TCSBRKP: u64 = 0x5425;
const TIOCSBRK: u64 = 0x5427;
const TIOCCBRK: u64 = 0x5428;
const TIOCGSID: u64 = 0x5429;
const TIOCGPTN: u64 = 0x8004_5430;
const TIOCSPTLCK: u64 = 0x4004_5431;
const TIOCGEXCL: u64 = 0x8004_5440;
const TIOCGPTLCK: u64 = 0x8004_5439;
const TIOCGPTPEER: u64 = 0x5441;

/// The terminal ioctls of a pty end (`a` as the syscall got them).
pub(super) fn ioctl<P: Platform>(
    _k: &mut Kernel,
    t: &mut Task<P>,
    end: &PtyEnd,
    a: [u64; 6],
) -> SysResult {
    let (req, arg) = (a[1] & 0xffff_ffff, a[2]);
    let pty = &end.pty;
    let master = end.master;
    // The caller's controlling terminal, for the requests that need it to be.
    let is_ctty = || controlling(t).is_some_and(|c| Rc::ptr_eq(&c, pty));
    match req {
        TCGETS => {
            let tio = pty.borrow().termios;
            t.mm.lock().write_obj(arg, &tio)?;
        }
        TCSETS | TCSETSW | TCSETSF => {
            let tio: Termios = t.mm.lock().read_obj(arg)?;
            if !master && !job_control(t, pty, SIGTTOU, false)? {
                return Ok(0);
            }
            let mut p = pty.borrow_mut();
            if req == TCSETSF {
                p.flush(true, false);
            }
            p.set_termios(tio);
        }
        TIOCGWINSZ => {
            let ws = pty.borrow().winsize;
            t.mm.lock().write_obj(arg, &ws)?;
        }
        TIOCSWINSZ => {
            let ws: Winsize = t.mm.lock().read_obj(arg)?;
            pty.borrow_mut().set_winsize(ws);
        }
        TIOCGPTN if master => {
            let n = pty.borrow().index;
            t.mm.lock().write_obj(arg, &n)?;
        }
        TIOCSPTLCK if master => {
            let v: i32 = t.mm.lock().read_obj(arg)?;
            pty.borrow_mut().locked = v != 0;
        }
        TIOCGPTLCK if master => {
            let v = pty.borrow().locked as i32;
            t.mm.lock().write_obj(arg, &v)?;
        }
        TIOCGPTPEER if master => {
            let allowed = O_ACCMODE | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
            if arg & !allowed != 0 {
                return Err(EINVAL);
            }
            return open_replica(t, pty, arg);
        }
        TIOCSCTTY => {
            let (pid, sid, pgid) = {
                let g = t.tg.get();
                (t.pid, g.sid, g.pgid)
            };
            if let Some(c) = controlling(t) {
                return if Rc::ptr_eq(&c, pty) {
                    Ok(0)
                } else {
                    Err(EPERM)
                };
            }
            if pid != sid {
                return Err(EPERM);
            }
            let other = pty.borrow().sid;
            // Another session's terminal is taken only by root asking to steal it (arg 1).
            if other != 0 && !(arg == 1 && crate::kernel::SANDBOX_IDS[1] == 0) {
                return Err(EPERM);
            }
            take_controlling(t, pty, sid, pgid);
        }
        TIOCNOTTY => {
            if !is_ctty() {
                return Err(ENOTTY);
            }
            let leader = t.tg.get().sid == t.pid;
            if leader {
                pty.borrow_mut().disassociate(false);
            }
            t.tg.lock().ctty = None;
        }
        TIOCGPGRP => {
            if !master && !is_ctty() {
                return Err(ENOTTY);
            }
            let fg = pty.borrow().fg_pgid;
            t.mm.lock().write_obj(arg, &fg)?;
        }
        TIOCSPGRP => {
            if !is_ctty() {
                return Err(ENOTTY);
            }
            if !job_control(t, pty, SIGTTOU, false)? {
                return Ok(0);
            }
            let pgid: i32 = t.mm.lock().read_obj(arg)?;
            if pgid < 0 {
                return Err(EINVAL);
            }
            pty.borrow_mut().fg_pgid = pgid as u32;
        }
        TIOCGSID => {
            if !master && !is_ctty() {
                return Err(ENOTTY);
            }
            let sid = pty.borrow().sid;
            if sid == 0 {
                return Err(ENOTTY);
            }
            t.mm.lock().write_obj(arg, &sid)?;
        }
        TIOCOUTQ => {
            let n = if master {
                0
            } else {
                pty.borrow().output_len() as i32
            };
            t.mm.lock().write_obj(arg, &n)?;
        }
        TCFLSH => {
            // Each end's input is what it reads, its output what it writes.
            let (input, output) = match arg {
                0 => (true, false),
                1 => (false, true),
                2 => (true, true),
                _ => return Err(EINVAL),
            };
            let (replica_in, out) = if master {
                (output, input)
            } else {
                (input, output)
            };
            pty.borrow_mut().flush(replica_in, out);
        }
        TCXONC => match arg {
            0 => pty.borrow_mut().stopped = true,
            1 => pty.borrow_mut().set_stopped(false),
            2 | 3 => {}
            _ => return Err(EINVAL),
        },
        TCSBRK | TCSBRKP | TIOCSBRK | TIOCCBRK => {} // output is never delayed
        TIOCEXCL => pty.borrow_mut().exclusive = true,
        TIOCNXCL => pty.borrow_mut().exclusive = false,
        TIOCGEXCL => {
            let v = pty.borrow().exclusive as i32;
            t.mm.lock().write_obj(arg, &v)?;
        }
        TIOCGETD => t.mm.lock().write_obj(arg, &0i32)?, // N_TTY
        TIOCSETD => {
            let ld: i32 = t.mm.lock().read_obj(arg)?;
            if ld != 0 {
                return Err(EINVAL);
            }
        }
        TIOCSTI => {
            let c: u8 = t.mm.lock().read_obj(arg)?;
            pty.borrow_mut().write_input(&[c]);
        }
        _ => return Err(ENOTTY),
    }
    Ok(0)
}
