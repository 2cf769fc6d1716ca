//! File-descriptor syscalls: host stdio streams and in-Sentry pipes. Until the filesystem
//! arrives, paths resolve only inside the Sentry's own `/proc/self`.

use alloc::rc::Rc;
use alloc::vec::Vec;

use crate::abi::{HostStat, IOV_MAX};
use crate::errno::{
    Errno, SysResult, EAGAIN, EBADF, EFAULT, EINVAL, EMFILE, ENOENT, ENOTTY, EPIPE,
};
use crate::file::{self, File, OpenFile, PipeEnd, PIPE_CAPACITY};
use crate::host::Buf;
use crate::kernel::{Kernel, Task};
use crate::platform::Platform;
use crate::signal;

pub const AT_FDCWD: i32 = -100;
const AT_EMPTY_PATH: u64 = 0x1000;
/// Linux's `MAX_RW_COUNT`: one read/write moves at most this much.
const MAX_RW_COUNT: u64 = 0x7fff_f000;
const UIO_MAXIOV: u64 = 1024;
const PATH_MAX: usize = 4096;
const TCGETS: u64 = 0x5401;
const TIOCGWINSZ: u64 = 0x5413;

fn file<P: Platform>(t: &Task<P>, fd: u64) -> Result<Rc<OpenFile>, Errno> {
    t.fds.get(fd as usize).cloned().flatten().ok_or(EBADF)
}

/// Lowest free descriptor at or above `min`, within RLIMIT_NOFILE.
pub fn alloc_fd<P: Platform>(t: &mut Task<P>, min: usize, f: Rc<OpenFile>) -> Result<u64, Errno> {
    let limit = t.rlimits[7].cur.min(1 << 20) as usize;
    let fd = (min..limit)
        .find(|&i| t.fds.get(i).is_none_or(|e| e.is_none()))
        .ok_or(EMFILE)?;
    if fd >= t.fds.len() {
        t.fds.resize_with(fd + 1, || None);
    }
    t.fds[fd] = Some(f);
    Ok(fd as u64)
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

/// A blocking pipe operation that no other task could ever complete (there is one task until
/// processes arrive): Linux would sleep forever; we report it and return EAGAIN.
fn would_block_forever(k: &mut Kernel, what: &str) -> Errno {
    k.log(format_args!(
        "{what} would block forever (no other task can end the wait); returning EAGAIN"
    ));
    EAGAIN
}

/// Walks the first `n` bytes of `iov`, calling `f(app address, byte range)` per element. Stops
/// at the first failure: its error if nothing was moved yet, else the count moved so far.
fn walk_iov(
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
    k: &mut Kernel,
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
        return Err(if of.nonblock {
            EAGAIN
        } else {
            would_block_forever(k, "read from an empty pipe")
        });
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
    let done = walk_iov(iov, n, |base, r| t.mm.copy_out(base, &bytes[r]))?;
    end.pipe.borrow_mut().data.drain(..done as usize);
    Ok(done)
}

fn pipe_write<P: Platform>(
    k: &mut Kernel,
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
    let room = (PIPE_CAPACITY - end.pipe.borrow().data.len()) as u64;
    if room == 0 {
        return Err(if of.nonblock {
            EAGAIN
        } else {
            would_block_forever(k, "write to a full pipe")
        });
    }
    let n = want.min(room);
    let mut buf = alloc::vec![0u8; n as usize];
    let done = walk_iov(iov, n, |base, r| t.mm.copy_in(base, &mut buf[r]))?;
    end.pipe.borrow_mut().data.extend(&buf[..done as usize]);
    Ok(done)
}

fn rw<P: Platform>(
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
                t.mm.io_bufs(base, len, to_app, &mut bufs)?;
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
    }
}

pub fn read<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    rw(k, t, a[0], &[(a[1], a[2])], true)
}

pub fn write<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    rw(k, t, a[0], &[(a[1], a[2])], false)
}

fn read_iovec<P: Platform>(t: &mut Task<P>, addr: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > UIO_MAXIOV {
        return Err(EINVAL);
    }
    let mut raw = alloc::vec![0u8; cnt as usize * 16];
    t.mm.copy_in(addr, &mut raw)?;
    let mut out = Vec::with_capacity(cnt as usize);
    let mut total = 0u64;
    for c in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(c[..8].try_into().unwrap());
        let len = u64::from_le_bytes(c[8..].try_into().unwrap());
        total = total
            .checked_add(len)
            .filter(|&t| (t as i64) >= 0)
            .ok_or(EINVAL)?;
        out.push((base, len));
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

pub fn close<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    file(t, a[0])?;
    t.fds[a[0] as usize] = None;
    Ok(0)
}

/// `pipe(fds)` and `pipe2(fds, flags)`.
pub fn pipe2<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const O_NONBLOCK: u64 = 0o4000;
    const O_CLOEXEC: u64 = 0o2000000;
    const O_DIRECT: u64 = 0o40000;
    if a[1] & !(O_NONBLOCK | O_CLOEXEC | O_DIRECT) != 0 {
        return Err(EINVAL);
    }
    let nonblock = a[1] & O_NONBLOCK != 0;
    let (r, w) = file::pipe();
    let rfd = alloc_fd(t, 0, Rc::new(OpenFile { file: r, nonblock }))?;
    let wfd = match alloc_fd(t, 0, Rc::new(OpenFile { file: w, nonblock })) {
        Ok(fd) => fd,
        Err(e) => {
            t.fds[rfd as usize] = None;
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&(rfd as i32).to_le_bytes());
    out[4..].copy_from_slice(&(wfd as i32).to_le_bytes());
    if let Err(e) = t.mm.copy_out(a[0], &out) {
        t.fds[rfd as usize] = None;
        t.fds[wfd as usize] = None;
        return Err(e);
    }
    Ok(0)
}

/// `struct stat` (x86-64, 144 bytes).
fn encode_stat(s: &HostStat) -> [u8; 144] {
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

fn stat_fd<P: Platform>(k: &mut Kernel, t: &mut Task<P>, fd: u64, out: u64) -> SysResult {
    let of = file(t, fd)?;
    let st = match &of.file {
        File::Stdio(hfd) => k.host.fstat(*hfd, true)?,
        File::Pipe(end) => HostStat {
            mode: 0o010600, // S_IFIFO | rw-------
            nlink: 1,
            blksize: 4096,
            ino: Rc::as_ptr(&end.pipe) as u64 & 0xffff_ffff,
            size: end.pipe.borrow().data.len() as u64,
            ..Default::default()
        },
    };
    t.mm.copy_out(out, &encode_stat(&st))?;
    Ok(0)
}

pub fn fstat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    stat_fd(k, t, a[0], a[1])
}

pub fn newfstatat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let path = t.mm.read_cstr(a[1], PATH_MAX)?;
    if path.is_empty() {
        if a[3] & AT_EMPTY_PATH == 0 {
            return Err(ENOENT);
        }
        return stat_fd(k, t, a[0], a[2]);
    }
    Err(no_filesystem(k, &path))
}

fn no_filesystem(k: &mut Kernel, path: &[u8]) -> Errno {
    if k.config.strace {
        k.log(format_args!(
            "path {:?}: the sandbox has no filesystem yet",
            core::str::from_utf8(path).unwrap_or("?")
        ));
    }
    ENOENT
}

pub fn ioctl<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let of = file(t, a[0])?;
    let File::Stdio(hfd) = of.file else {
        return Err(ENOTTY);
    };
    let len = match a[1] {
        TCGETS => 36,
        TIOCGWINSZ => 8,
        _ => return Err(ENOTTY),
    };
    let mut buf = [0u8; 36];
    k.host.tty_ioctl(hfd, a[1], &mut buf[..len])?;
    t.mm.copy_out(a[2], &buf[..len])?;
    Ok(0)
}

/// `readlinkat(dirfd, path, buf, size)`; `readlink` arrives here with `AT_FDCWD`.
pub fn readlinkat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let size = a[3] as i64;
    if size <= 0 {
        return Err(EINVAL);
    }
    let path = t.mm.read_cstr(a[1], PATH_MAX)?;
    let own = alloc::format!("/proc/{}/exe", t.pid);
    if path == b"/proc/self/exe" || path == own.as_bytes() || path == b"/proc/thread-self/exe" {
        let n = t.exe_path.len().min(size as usize);
        let target = t.exe_path[..n].to_vec();
        t.mm.copy_out(a[2], &target).map_err(|_| EFAULT)?;
        return Ok(n as u64);
    }
    Err(no_filesystem(k, &path))
}
