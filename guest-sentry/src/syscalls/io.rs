//! File-descriptor syscalls: `read`/`write` and their vector forms on every kind of open file
//! (host stdio, in-Sentry pipes, devices, host files, overlay files, `/proc` files), `close`,
//! `pipe2`, `fsync`, `ioctl` (terminals, `FIONREAD`) and readiness (`poll`, `select`). Opening
//! paths is in [`super::fs`].

use alloc::rc::Rc;
use alloc::vec::Vec;

use zerocopy::IntoBytes;

use super::flags::{O_CLOEXEC, O_DIRECT, O_NONBLOCK};
use crate::abi::IOV_MAX;
use crate::errno::{Errno, SysResult, EAGAIN, EBADF, EINVAL, EMFILE, ENOTTY, EPIPE};
use crate::file::{self, Dev, File, OpenFile, PipeEnd};
use crate::host::Buf;
use crate::kernel::{Kernel, Task};
use crate::linux::{IoVec, PollFd, Termios, Timespec, Winsize};
use crate::platform::Platform;
use crate::signal;

pub const AT_FDCWD: i32 = -100;
/// Linux's `MAX_RW_COUNT`: one read/write moves at most this much.
pub(super) const MAX_RW_COUNT: u64 = 0x7fff_f000;
const UIO_MAXIOV: u64 = 1024;
pub(super) const TCGETS: u64 = 0x5401;
const TIOCGWINSZ: u64 = 0x5413;

pub(super) fn file<P: Platform>(t: &Task<P>, fd: u64) -> Result<Rc<OpenFile>, Errno> {
    t.files
        .lock()
        .fds
        .get(fd as usize)
        .cloned()
        .flatten()
        .ok_or(EBADF)
}

/// Lowest free descriptor at or above `min`, within RLIMIT_NOFILE.
pub fn alloc_fd<P: Platform>(t: &mut Task<P>, min: usize, f: Rc<OpenFile>) -> Result<u64, Errno> {
    let limit = t.tg.get().rlimits[7].cur;
    t.files.lock().alloc(min, limit, f).ok_or(EMFILE)
}

/// Moves data between host stdio and the gathered app ranges, at most `IOV_MAX` ranges per
/// host call. Stops early on a short transfer, as the syscalls do.
fn transfer(k: &mut Kernel, fd: u32, bufs: &[Buf], to_app: bool) -> SysResult {
    let mut total = 0u64;
    for chunk in bufs.chunks(IOV_MAX) {
        let want: u64 = chunk.iter().map(|b| b.len).sum();
        let r = if to_app {
            k.host.read(fd, chunk)
        } else {
            k.host.write(fd, chunk)
        };
        match r {
            Ok(n) => {
                total += n;
                if n < want {
                    break;
                }
            }
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

/// A pipe operation that must wait: EAGAIN for a non-blocking descriptor, else the task
/// blocks and the syscall is dispatched again once another task made progress.
pub(super) fn wait_or_eagain<P: Platform>(t: &mut Task<P>, of: &OpenFile) -> SysResult {
    if of.nonblock.get() {
        return Err(EAGAIN);
    }
    t.request = Some(crate::sched::Request::Block);
    Ok(0)
}

/// Walks the first `n` bytes of `iov`, calling `f(app address, byte range)` per element. Stops
/// at the first failure: its error if nothing was moved yet, else the count moved so far.
pub(super) fn walk_iov(
    iov: &[(u64, u64)],
    n: u64,
    mut f: impl FnMut(u64, core::ops::Range<usize>) -> Result<(), Errno>,
) -> SysResult {
    let mut done = 0u64;
    for &(base, len) in iov {
        if done == n {
            break;
        }
        let m = len.min(n - done);
        if let Err(e) = f(base, done as usize..(done + m) as usize) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        done += m;
    }
    Ok(done)
}

fn pipe_read<P: Platform>(
    _k: &mut Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    end: &PipeEnd,
    iov: &[(u64, u64)],
) -> SysResult {
    if end.write {
        return Err(EBADF);
    }
    let want: u64 = iov.iter().map(|v| v.1).sum::<u64>().min(MAX_RW_COUNT);
    if want == 0 {
        return Ok(0);
    }
    let available = end.pipe.borrow().data.len() as u64;
    if available == 0 {
        if end.pipe.borrow().writers == 0 {
            return Ok(0);
        }
        return wait_or_eagain(t, of);
    }
    let n = want.min(available);
    let bytes: Vec<u8> = end
        .pipe
        .borrow()
        .data
        .iter()
        .take(n as usize)
        .copied()
        .collect();
    // Copy out before consuming, so a bad buffer leaves the data in the pipe.
    let done = walk_iov(iov, n, |base, r| t.mm.lock().copy_out(base, &bytes[r]))?;
    let mut p = end.pipe.borrow_mut();
    // Writers wait for room only when the pipe was full (as Linux wakes them).
    if p.data.len() >= p.capacity {
        p.gen_out = crate::events::stamp();
    }
    p.data.drain(..done as usize);
    drop(p);
    crate::sched::note_progress();
    Ok(done)
}

fn pipe_write<P: Platform>(
    _k: &mut Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    end: &PipeEnd,
    iov: &[(u64, u64)],
) -> SysResult {
    if !end.write {
        return Err(EBADF);
    }
    if end.pipe.borrow().readers == 0 {
        signal::raise(t, signal::SIGPIPE);
        return Err(EPIPE);
    }
    let want: u64 = iov.iter().map(|v| v.1).sum::<u64>().min(MAX_RW_COUNT);
    if want == 0 {
        return Ok(0);
    }
    let room = {
        let p = end.pipe.borrow();
        p.capacity.saturating_sub(p.data.len()) as u64
    };
    if room == 0 {
        return wait_or_eagain(t, of);
    }
    let n = want.min(room);
    let mut buf = alloc::vec![0u8; n as usize];
    let done = walk_iov(iov, n, |base, r| t.mm.lock().copy_in(base, &mut buf[r]))?;
    let mut p = end.pipe.borrow_mut();
    p.data.extend(&buf[..done as usize]);
    p.gen_in = crate::events::stamp();
    drop(p);
    crate::sched::note_progress();
    Ok(done)
}

pub(super) fn rw<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    fd: u64,
    iov: &[(u64, u64)],
    to_app: bool,
) -> SysResult {
    let of = file(t, fd)?;
    match &of.file {
        File::Stdio(hfd) => {
            let mut bufs = Vec::new();
            let mut left = MAX_RW_COUNT;
            for &(base, len) in iov {
                let len = len.min(left);
                t.mm.lock().io_bufs(base, len, to_app, &mut bufs)?;
                left -= len;
            }
            if bufs.is_empty() {
                return Ok(0);
            }
            let r = transfer(k, *hfd, &bufs, to_app);
            if r == Err(EPIPE) {
                // The host end is a pipe nobody reads any more: as for an in-Sentry pipe.
                signal::raise(t, signal::SIGPIPE);
            }
            r
        }
        File::Pipe(end) if to_app => pipe_read(k, t, &of, end, iov),
        File::Pipe(end) => pipe_write(k, t, &of, end, iov),
        File::Host(h) if to_app => super::fs::read_host(k, t, &of, h, iov, None),
        // Host files are written only when opened for writing through (`--rw`).
        File::Host(h) => super::fs::write_host(k, t, &of, h, iov, None),
        File::Mem { .. } => super::ovl::mem_rw(k, t, &of, iov, to_app, None),
        File::Synthetic { dir: true, .. } => Err(crate::errno::EISDIR),
        File::Synthetic { data, .. } if to_app => {
            let start = of.offset.get() as usize;
            let rest = data.get(start..).unwrap_or_default();
            let mut done = 0usize;
            for &(base, len) in iov {
                let n = (len as usize).min(rest.len() - done);
                if n == 0 {
                    break;
                }
                t.mm.lock().copy_out(base, &rest[done..done + n])?;
                done += n;
            }
            of.offset.set((start + done) as u64);
            Ok(done as u64)
        }
        File::Synthetic { .. } => Err(EBADF),
        File::Dev(_) if !(if to_app { of.readable() } else { of.writable() }) => Err(EBADF),
        File::Dev(dev) => dev_rw(k, t, *dev, iov, to_app),
        File::EventFd(e) => super::events::eventfd_rw(t, &of, e, iov, to_app),
        File::TimerFd(tf) if to_app => super::events::timerfd_read(k, t, &of, tf, iov),
        File::SignalFd(mask) if to_app => super::events::signalfd_read(t, &of, mask, iov),
        File::Socket(s) => super::socket::sock_rw(k, t, &of, s, iov, to_app),
        File::Pty(end) => super::tty::rw(k, t, &of, end, iov, to_app),
        File::Epoll(_) | File::TimerFd(_) | File::SignalFd(_) | File::PidFd(_) => Err(EINVAL),
    }
}

/// Reads and writes of the Sentry's own devices.
fn dev_rw<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    dev: Dev,
    iov: &[(u64, u64)],
    to_app: bool,
) -> SysResult {
    let total: u64 = iov.iter().map(|v| v.1).sum::<u64>().min(MAX_RW_COUNT);
    if !to_app {
        // Every device here swallows writes whole; the data must still be readable.
        let mut bufs = Vec::new();
        for &(base, len) in iov {
            t.mm.lock().io_bufs(base, len, false, &mut bufs)?;
        }
        return Ok(total);
    }
    if dev == Dev::Null {
        return Ok(0);
    }
    let mut chunk = [0u8; 4096];
    let mut done = 0u64;
    for &(base, len) in iov {
        let mut off = 0;
        while off < len && done < total {
            let n = (len - off).min(chunk.len() as u64).min(total - done) as usize;
            if dev == Dev::Urandom {
                k.random_bytes(&mut chunk[..n]);
            } else {
                chunk[..n].fill(0);
            }
            let r = t.mm.lock().copy_out(base + off, &chunk[..n]);
            if let Err(e) = r {
                return if done == 0 { Err(e) } else { Ok(done) };
            }
            off += n as u64;
            done += n as u64;
        }
    }
    Ok(done)
}

pub fn read<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    rw(k, t, a[0], &[(a[1], a[2])], true)
}

pub fn write<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    rw(k, t, a[0], &[(a[1], a[2])], false)
}

pub(super) fn read_iovec<P: Platform>(
    t: &mut Task<P>,
    addr: u64,
    cnt: u64,
) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > UIO_MAXIOV {
        return Err(EINVAL);
    }
    let raw: Vec<IoVec> = t.mm.lock().read_objs(addr, cnt as usize)?;
    let mut out = Vec::with_capacity(cnt as usize);
    let mut total = 0u64;
    for v in raw {
        total = total
            .checked_add(v.iov_len)
            .filter(|&t| (t as i64) >= 0)
            .ok_or(EINVAL)?;
        out.push((v.iov_base, v.iov_len));
    }
    Ok(out)
}

pub fn readv<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    file(t, a[0])?;
    let iov = read_iovec(t, a[1], a[2])?;
    rw(k, t, a[0], &iov, true)
}

pub fn writev<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    file(t, a[0])?;
    let iov = read_iovec(t, a[1], a[2])?;
    rw(k, t, a[0], &iov, false)
}

pub fn close<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let of = file(t, a[0])?;
    super::locks::closing(k, t, a[0], &of);
    t.files.lock().fds[a[0] as usize] = None;
    t.files.lock().cloexec.remove(&a[0]);
    crate::file::release(k.host, of);
    // Host files in flight in a socket queue this close destroyed.
    k.unix.reap(k.host);
    Ok(0)
}

/// `close_range(first, last, flags)`: closes the open descriptors in `first..=last`, or with
/// `CLOSE_RANGE_CLOEXEC` marks them close-on-exec; `CLOSE_RANGE_UNSHARE` first gives the task
/// a table of its own (as `unshare(CLONE_FILES)`), so the closes leave its threads' alone.
pub fn close_range<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u64 = 2;
    const CLOSE_RANGE_CLOEXEC: u64 = 4;
    let (first, last, flags) = (a[0] as u32 as u64, a[1] as u32 as u64, a[2]);
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        t.files = t.files.copy();
    }
    let open: Vec<u64> = {
        let files = t.files.get();
        let end = (files.fds.len() as u64).min(last.saturating_add(1));
        (first..end)
            .filter(|&fd| files.fds[fd as usize].is_some())
            .collect()
    };
    if flags & CLOSE_RANGE_CLOEXEC != 0 {
        t.files.lock().cloexec.extend(open);
        return Ok(0);
    }
    for fd in open {
        if let Ok(of) = file(t, fd) {
            super::locks::closing(k, t, fd, &of);
        }
        let of = t.files.lock().fds[fd as usize].take();
        t.files.lock().cloexec.remove(&fd);
        if let Some(of) = of {
            crate::file::release(k.host, of);
        }
    }
    k.unix.reap(k.host);
    Ok(0)
}

/// `pipe(fds)` and `pipe2(fds, flags)`.
pub fn pipe2<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[1] & !(O_NONBLOCK | O_CLOEXEC | O_DIRECT) != 0 {
        return Err(EINVAL);
    }
    let nonblock = a[1] & O_NONBLOCK != 0;
    let (r, w) = file::pipe();
    let rfd = alloc_fd(t, 0, Rc::new(OpenFile::new(r, nonblock)))?;
    let wfd = match alloc_fd(t, 0, Rc::new(OpenFile::new(w, nonblock))) {
        Ok(fd) => fd,
        Err(e) => {
            t.files.lock().fds[rfd as usize] = None;
            return Err(e);
        }
    };
    let r = t.mm.lock().write_obj(a[0], &[rfd as i32, wfd as i32]);
    if let Err(e) = r {
        t.files.lock().fds[rfd as usize] = None;
        t.files.lock().fds[wfd as usize] = None;
        return Err(e);
    }
    if a[1] & O_CLOEXEC != 0 {
        t.files.lock().cloexec.insert(rfd);
        t.files.lock().cloexec.insert(wfd);
    }
    Ok(0)
}

/// `fsync`/`fdatasync`: a file written through to the host (`--rw`) is synced there; the
/// overlay and everything else live in memory, where there is nothing to sync.
pub fn fsync<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let of = file(t, a[0])?;
    if let File::Host(h) = &of.file {
        if h.write {
            k.host.handle_op(h.handle, crate::abi::HANDLE_FSYNC, 0)?;
        }
    }
    Ok(0)
}

pub fn ioctl<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const FIONREAD: u64 = 0x541b;
    const FIONBIO: u64 = 0x5421;
    const FIONCLEX: u64 = 0x5450;
    const FIOCLEX: u64 = 0x5451;
    // Generic to every descriptor (libuv sets non-blocking mode this way).
    match a[1] {
        FIONBIO => {
            let of = file(t, a[0])?;
            let on: i32 = t.mm.lock().read_obj(a[2])?;
            of.nonblock.set(on != 0);
            return Ok(0);
        }
        FIOCLEX | FIONCLEX => {
            file(t, a[0])?;
            if a[1] == FIOCLEX {
                t.files.lock().cloexec.insert(a[0]);
            } else {
                t.files.lock().cloexec.remove(&a[0]);
            }
            return Ok(0);
        }
        _ => {}
    }
    if (0x8900..0x8a00).contains(&(a[1] & 0xffff_ffff)) {
        // Socket and interface requests (SIOC*): on a socket of any family, as Linux's
        // `sock_ioctl` hands them to `dev_ioctl`.
        let of = file(t, a[0])?;
        if let File::Socket(_) = &of.file {
            return super::socket::dev_ioctl(t, a[1] & 0xffff_ffff, a[2]);
        }
        return Err(ENOTTY);
    }
    if a[1] == FIONREAD {
        let of = file(t, a[0])?;
        let n: u64 = match &of.file {
            File::Pipe(end) if !end.write => end.pipe.borrow().data.len() as u64,
            File::Socket(s) => s.borrow().readable_bytes() as u64,
            File::Pty(end) => end.pty.borrow().readable(end.master) as u64,
            File::Host(h) if !h.dir && !h.path_only => k
                .host
                .fstat(h.handle, false)?
                .size
                .saturating_sub(of.offset.get()),
            _ => return Err(ENOTTY),
        };
        t.mm.lock().write_obj(a[2], &(n as i32))?;
        return Ok(0);
    }
    let of = file(t, a[0])?;
    if let File::Pty(end) = &of.file {
        return super::tty::ioctl(k, t, end, a);
    }
    let File::Stdio(hfd) = of.file else {
        return Err(ENOTTY);
    };
    const TCSETS: u64 = 0x5402;
    const TCSETSW: u64 = 0x5403;
    const TCSETSF: u64 = 0x5404;
    const TIOCGPGRP: u64 = 0x540f;
    const TIOCSPGRP: u64 = 0x5410;
    match a[1] {
        TCGETS => {
            let mut tio = Termios::default();
            k.host.tty_ioctl(hfd, a[1], tio.as_mut_bytes())?;
            t.mm.lock().write_obj(a[2], &tio)?;
        }
        TIOCGWINSZ => {
            let mut ws = Winsize::default();
            k.host.tty_ioctl(hfd, a[1], ws.as_mut_bytes())?;
            t.mm.lock().write_obj(a[2], &ws)?;
        }
        // Terminal modes (raw mode, echo off) are set on the host terminal; vmm puts the
        // original modes back when the sandbox ends.
        TCSETS | TCSETSW | TCSETSF => {
            let mut tio: Termios = t.mm.lock().read_obj(a[2])?;
            k.host.tty_ioctl(hfd, a[1], tio.as_mut_bytes())?;
        }
        // The foreground process group is the sandbox's own notion (Ctrl-C goes there).
        TIOCGPGRP | TIOCSPGRP => {
            let mut tio = Termios::default();
            k.host.tty_ioctl(hfd, TCGETS, tio.as_mut_bytes())?; // a terminal, or ENOTTY
            if a[1] == TIOCGPGRP {
                t.mm.lock().write_obj(a[2], &k.foreground_pgid)?;
            } else {
                let pgid: i32 = t.mm.lock().read_obj(a[2])?;
                if pgid <= 0 {
                    return Err(EINVAL);
                }
                k.foreground_pgid = pgid as u32;
            }
        }
        _ => return Err(ENOTTY),
    }
    Ok(0)
}

/// What descriptor `fd` is ready for (`POLL*` bits), with the next expiry of a timer it
/// is; `None` for a bad descriptor.
fn readiness<P: Platform>(k: &Kernel, t: &Task<P>, fd: i64) -> Option<crate::events::Ready> {
    if fd < 0 {
        return None;
    }
    let of = file(t, fd as u64).ok()?;
    Some(crate::events::poll_file(k, t, &of, 1))
}

fn poll_common<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    fds: u64,
    nfds: u64,
    timeout_ns: Option<u64>,
    sigmask: (u64, u64),
) -> SysResult {
    const POLLERR: u16 = 0x8;
    const POLLHUP: u16 = 0x10;
    const POLLNVAL: u16 = 0x20;
    if nfds > t.tg.get().rlimits[7].cur.min(1 << 20) {
        return Err(EINVAL);
    }
    let mut raw: Vec<PollFd> = t.mm.lock().read_objs(fds, nfds as usize)?;
    super::events::set_temp_mask(t, sigmask.0, sigmask.1)?;
    let masked = sigmask.0 != 0;
    let mut count = 0u64;
    let mut timer = None;
    for e in raw.iter_mut() {
        let (fd, events) = (e.fd as i64, e.events);
        let revents = if fd < 0 {
            0
        } else {
            match readiness(k, t, fd) {
                None => POLLNVAL,
                Some(r) if r.needs_view => return Err(crate::fsimpl::procfs::NEED_VIEW),
                Some(r) => {
                    timer = crate::events::earliest(timer, r.wake);
                    (r.mask as u16) & (events | POLLERR | POLLHUP)
                }
            }
        };
        e.revents = revents;
        count += (revents != 0) as u64;
    }
    if count == 0 {
        if masked && signal::deliverable(t).is_some() {
            t.wake_at = None;
            return Err(crate::errno::EINTR);
        }
        if !super::events::block(k, t, timeout_ns, timer) {
            return Ok(0); // blocked: retried when something changes or the timeout passes
        }
    }
    t.wake_at = None;
    super::events::end_temp_mask(t, masked);
    t.mm.lock().write_obj(fds, raw.as_slice())?;
    Ok(count)
}

/// `poll(fds, nfds, timeout_ms)`.
pub fn poll<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let ms = a[2] as i32;
    let timeout = if ms < 0 {
        None
    } else {
        Some(ms as u64 * 1_000_000)
    };
    poll_common(k, t, a[0], a[1], timeout, (0, 0))
}

/// A `timespec` (or, with `usec`, a `timeval`) at `addr` in nanoseconds; `None` for a null
/// pointer. EINVAL for a negative or out-of-range value.
pub(super) fn read_timespec<P: Platform>(
    t: &mut Task<P>,
    addr: u64,
    usec: bool,
) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    // A `timeval` has a `timespec`'s layout, with microseconds in the second field.
    let Timespec {
        tv_sec: sec,
        tv_nsec: frac,
    } = t.mm.lock().read_obj(addr)?;
    let (limit, scale) = if usec {
        (1_000_000, 1000)
    } else {
        (1_000_000_000, 1)
    };
    if sec < 0 || !(0..limit).contains(&frac) {
        return Err(EINVAL);
    }
    Ok(Some(
        (sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(frac as u64 * scale),
    ))
}

/// `ppoll(fds, nfds, timeout, sigmask, size)`: the mask is in force while it waits.
pub fn ppoll<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let timeout = read_timespec(t, a[2], false)?;
    poll_common(k, t, a[0], a[1], timeout, (a[3], a[4]))
}

fn select_common<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    a: [u64; 6],
    timeout_ns: Option<u64>,
    sigmask: (u64, u64),
) -> SysResult {
    let nfds = a[0];
    if nfds > 1024 {
        return Err(EINVAL);
    }
    let words = nfds.div_ceil(64) as usize;
    let mut sets = [
        alloc::vec![0u64; words],
        alloc::vec![0u64; words],
        alloc::vec![0u64; words],
    ];
    for (i, set) in sets.iter_mut().enumerate() {
        if a[1 + i] != 0 {
            *set = t.mm.lock().read_objs(a[1 + i], words)?;
        }
    }
    super::events::set_temp_mask(t, sigmask.0, sigmask.1)?;
    let mut out = [
        alloc::vec![0u64; words],
        alloc::vec![0u64; words],
        alloc::vec![0u64; words],
    ];
    use crate::events as ev;
    const IN_SET: u32 =
        ev::EPOLLRDNORM | ev::EPOLLRDBAND | ev::EPOLLIN | ev::EPOLLHUP | ev::EPOLLERR;
    const OUT_SET: u32 = ev::EPOLLWRBAND | ev::EPOLLWRNORM | ev::EPOLLOUT | ev::EPOLLERR;
    const EX_SET: u32 = ev::EPOLLPRI;
    let mut count = 0u64;
    let mut timer = None;
    for fd in 0..nfds {
        let (w, bit) = ((fd / 64) as usize, 1u64 << (fd % 64));
        if sets.iter().all(|s| s[w] & bit == 0) {
            continue;
        }
        let r = readiness(k, t, fd as i64).ok_or(EBADF)?;
        if r.needs_view {
            return Err(crate::fsimpl::procfs::NEED_VIEW);
        }
        timer = ev::earliest(timer, r.wake);
        for (i, set) in [IN_SET, OUT_SET, EX_SET].into_iter().enumerate() {
            if sets[i][w] & bit != 0 && r.mask & set != 0 {
                out[i][w] |= bit;
                count += 1;
            }
        }
    }
    if count == 0 {
        if sigmask.0 != 0 && signal::deliverable(t).is_some() {
            t.wake_at = None;
            return Err(crate::errno::EINTR);
        }
        if !super::events::block(k, t, timeout_ns, timer) {
            return Ok(0);
        }
    }
    t.wake_at = None;
    super::events::end_temp_mask(t, sigmask.0 != 0);
    for (i, set) in out.iter().enumerate() {
        if a[1 + i] != 0 {
            t.mm.lock().write_obj(a[1 + i], set.as_slice())?;
        }
    }
    Ok(count)
}

/// `select(nfds, readfds, writefds, exceptfds, timeval)`.
pub fn select<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let timeout = read_timespec(t, a[4], true)?;
    select_common(k, t, a, timeout, (0, 0))
}

/// `pselect6(nfds, readfds, writefds, exceptfds, timespec, sigmask)`: the mask is in force
/// while it waits.
pub fn pselect6<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let timeout = read_timespec(t, a[4], false)?;
    // The sixth argument points to { const sigset_t *ss; size_t ss_len; }.
    let sigmask = if a[5] != 0 {
        let [ss, len]: [u64; 2] = t.mm.lock().read_obj(a[5])?;
        (ss, len)
    } else {
        (0, 0)
    };
    select_common(k, t, a, timeout, sigmask)
}
