//! Socket syscalls over the Sentry's Unix domain sockets ([`crate::net::unix`]) and the
//! loopback network's TCP and UDP sockets (their addresses, binding and connecting in
//! [`super::inet`]; once connected, a TCP socket takes the stream paths here): `socket`,
//! `socketpair`, `bind`/`listen`/`connect`/`accept4`, `getsockname`/`getpeername`,
//! `send*`/`recv*` (with `SCM_RIGHTS` and `SCM_CREDENTIALS`), `shutdown`,
//! `getsockopt`/`setsockopt`, and `read`/`write` on a socket. Other address families answer
//! EAFNOSUPPORT (libc's lookups through nscd or systemd-userdb then fall back to files).
//!
//! Filesystem names live in the Sentry-wide table ([`crate::net::unix::Names`], in
//! [`Kernel::unix`]), keyed by the normalized path: `stat` shows them as `S_IFSOCK` files and
//! `unlink` removes them (through [`super::ovl`]); other calls (`open`, `rename`, `readdir`)
//! do not see them yet — that needs the VFS's special files.

use alloc::rc::Rc;
use alloc::vec::Vec;

use super::io::{alloc_fd, file, AT_FDCWD};
use super::{inet, netlink};
use crate::errno::{
    Errno, SysResult, EAFNOSUPPORT, EAGAIN, EBADF, ECONNREFUSED, EFAULT, EINVAL, EISCONN, ENOBUFS,
    ENOENT, ENOPROTOOPT, ENOTCONN, ENOTSOCK, EOPNOTSUPP, EPROTONOSUPPORT, ESOCKTNOSUPPORT,
};
use crate::file::{File, OpenFile};
use crate::kernel::{Kernel, Task, SANDBOX_IDS};
use crate::net::inet::{Endpoint, AF_INET, AF_INET6};
use crate::net::netlink::AF_NETLINK;
use crate::net::unix::{
    self, Cred, Msg, Name, SendErr, Sock, SockRef, State, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM,
};
use crate::platform::Platform;
use crate::signal;

const AF_UNIX: u64 = 1;
const SOCK_NONBLOCK: u64 = 0o4000;
const SOCK_CLOEXEC: u64 = 0o2000000;
const SOL_SOCKET: u64 = 1;
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;
const MSG_OOB: u64 = 1;
const MSG_PEEK: u64 = 2;
const MSG_CTRUNC: u32 = 8;
const MSG_TRUNC: u64 = 0x20;
const MSG_DONTWAIT: u64 = 0x40;
const MSG_EOR: u32 = 0x80;
const MSG_WAITALL: u64 = 0x100;
const MSG_NOSIGNAL: u64 = 0x4000;
const MSG_CMSG_CLOEXEC: u64 = 0x4000_0000;
/// `sizeof(struct sockaddr_un)`.
const SUN_LEN: u64 = 110;
/// Linux's `MAX_RW_COUNT`.
const MAX_RW: usize = 0x7fff_f000;
/// Linux's `optmem_max`: the most control data one `sendmsg` takes.
const OPTMEM_MAX: u64 = 20480;
const UIO_MAXIOV: u64 = 1024;

pub(super) fn cred<P: Platform>(t: &Task<P>) -> Cred {
    Cred {
        pid: t.pid,
        uid: SANDBOX_IDS[1],
        gid: SANDBOX_IDS[3],
    }
}

/// The Unix socket behind descriptor `fd` (ENOTSOCK for another file).
fn sock<P: Platform>(t: &Task<P>, fd: u64) -> Result<(Rc<OpenFile>, SockRef), Errno> {
    let of = file(t, fd)?;
    let s = match &of.file {
        File::Socket(s) => s.clone(),
        _ => return Err(ENOTSOCK),
    };
    Ok((of, s))
}

fn new_sock_fd<P: Platform>(t: &mut Task<P>, s: SockRef, flags: u64) -> SysResult {
    let of = Rc::new(OpenFile::new(File::Socket(s), flags & SOCK_NONBLOCK != 0));
    let fd = alloc_fd(t, 0, of)?;
    if flags & SOCK_CLOEXEC != 0 {
        t.files.lock().cloexec.insert(fd);
    } else {
        t.files.lock().cloexec.remove(&fd);
    }
    Ok(fd)
}

/// The kind in `socket`'s type argument (EINVAL for flags other than NONBLOCK/CLOEXEC).
fn type_kind(ty: u64) -> Result<u64, Errno> {
    if ty & !(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(EINVAL);
    }
    Ok(ty & 0xf)
}

fn sock_type(ty: u64, proto: u64) -> Result<u32, Errno> {
    let kind = match type_kind(ty)? {
        1 => SOCK_STREAM,
        2 => SOCK_DGRAM,
        5 => SOCK_SEQPACKET,
        3 => SOCK_DGRAM, // SOCK_RAW is served as a datagram socket, as Linux does for AF_UNIX
        _ => return Err(ESOCKTNOSUPPORT),
    };
    if proto != 0 && proto != 1 {
        return Err(EPROTONOSUPPORT);
    }
    Ok(kind)
}

/// `socket(domain, type, protocol)`.
pub fn socket<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (family, ty, proto) = (a[0] & 0xffff_ffff, a[1] & 0xffff_ffff, a[2] & 0xffff_ffff);
    let s = if family == u64::from(AF_INET) || family == u64::from(AF_INET6) {
        inet::new_socket(family as u16, type_kind(ty)?, proto, cred(t), k)?
    } else if family == u64::from(AF_NETLINK) {
        netlink::new_socket(type_kind(ty)?, proto, cred(t), k)?
    } else if family == AF_UNIX {
        Sock::new(sock_type(ty, proto)?, cred(t), &k.unix.reaper)
    } else {
        return Err(EAFNOSUPPORT);
    };
    new_sock_fd(t, s, a[1])
}

/// `socketpair(domain, type, protocol, sv)`.
pub fn socketpair<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let family = a[0] & 0xffff_ffff;
    if family == u64::from(AF_INET)
        || family == u64::from(AF_INET6)
        || family == u64::from(AF_NETLINK)
    {
        // Linux: the inet and netlink families have no pairs.
        return Err(EOPNOTSUPP);
    }
    if family != AF_UNIX {
        return Err(EAFNOSUPPORT);
    }
    let ty = sock_type(a[1] & 0xffff_ffff, a[2] & 0xffff_ffff)?;
    let (x, y) = unix::pair(ty, cred(t), &k.unix.reaper);
    let fx = new_sock_fd(t, x, a[1])?;
    let fy = match new_sock_fd(t, y, a[1]) {
        Ok(fd) => fd,
        Err(e) => {
            t.files.lock().fds[fx as usize] = None;
            return Err(e);
        }
    };
    if let Err(e) = t.mm.lock().write_obj(a[3], &[fx as i32, fy as i32]) {
        t.files.lock().fds[fx as usize] = None;
        t.files.lock().fds[fy as usize] = None;
        return Err(e);
    }
    Ok(0)
}

/// A `sockaddr_un` from the app: the table key and the `sun_path` bytes; `None` for a bare
/// family (`addrlen == 2`: autobind for `bind`).
fn read_addr<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    addr: u64,
    len: u64,
    follow: bool,
) -> Result<Option<(Name, Vec<u8>)>, Errno> {
    let len = len & 0xffff_ffff;
    if !(2..=SUN_LEN).contains(&len) {
        return Err(EINVAL);
    }
    let mut raw = alloc::vec![0u8; len as usize];
    t.mm.lock().copy_in(addr, &mut raw)?;
    if u16::from_ne_bytes([raw[0], raw[1]]) as u64 != AF_UNIX {
        return Err(EINVAL);
    }
    let sun = &raw[2..];
    if sun.is_empty() {
        return Ok(None);
    }
    if sun[0] == 0 {
        return Ok(Some((Name::Abstract(sun[1..].to_vec()), sun.to_vec())));
    }
    let end = sun.iter().position(|&b| b == 0).unwrap_or(sun.len());
    let path = sun[..end].to_vec();
    let abs = super::fs::absolute(t, AT_FDCWD as u64, &path)?;
    let np = super::fs::sandbox_path(k, t, &abs, follow)?;
    Ok(Some((Name::Path(np), path)))
}

/// The socket address the app sees for a socket of `family` whose kept address is `addr`
/// (a Unix socket's `sun_path` bytes, an inet socket's endpoint; `None`: unbound).
fn sockaddr_of(family: u16, addr: Option<&[u8]>) -> Vec<u8> {
    if family == AF_INET || family == AF_INET6 {
        return inet::sockaddr(family, addr.and_then(Endpoint::decode));
    }
    if family == AF_NETLINK {
        return netlink::sockaddr(addr);
    }
    sockaddr(addr)
}

/// The `sockaddr_un` bytes of `sun_path` bytes `addr` (`None`: unbound, the family alone).
fn sockaddr(addr: Option<&[u8]>) -> Vec<u8> {
    let mut out = (AF_UNIX as u16).to_ne_bytes().to_vec();
    if let Some(a) = addr {
        out.extend_from_slice(a);
        if a.first() != Some(&0) {
            out.push(0); // a path's length counts its NUL
        }
    }
    out
}

/// Writes `sa` to `addr` with its length at `lenp`, as Linux's `move_addr_to_user`: at most
/// the buffer's size, and the full length.
fn write_addr<P: Platform>(t: &mut Task<P>, addr: u64, lenp: u64, sa: &[u8]) -> Result<(), Errno> {
    if addr == 0 || lenp == 0 {
        return Ok(());
    }
    let ulen: i32 = t.mm.lock().read_obj(lenp)?;
    if ulen < 0 {
        return Err(EINVAL);
    }
    let n = sa.len().min(ulen as usize);
    t.mm.lock().copy_out(addr, &sa[..n])?;
    t.mm.lock().write_obj(lenp, &(sa.len() as i32))?;
    Ok(())
}

/// The live socket bound at `name` (ECONNREFUSED where a path exists but nobody is bound).
fn lookup(k: &Kernel, name: &Name) -> Result<SockRef, Errno> {
    match k.unix.lookup(name) {
        Err(e) if e == ENOENT => {
            let Name::Path(np) = name else { return Err(e) };
            match super::ovl::stat(k, np, false) {
                Ok(_) => Err(ECONNREFUSED),
                Err(e) => Err(e),
            }
        }
        r => r,
    }
}

/// `bind(fd, addr, addrlen)`.
pub fn bind<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (_, s) = sock(t, a[0])?;
    if inet::is_inet(&s.borrow()) {
        return inet::bind(k, t, &s, a[1], a[2]);
    }
    if netlink::is_netlink(&s.borrow()) {
        return netlink::bind(k, t, &s, a[1], a[2]);
    }
    let Some((name, raw)) = read_addr(k, t, a[1], a[2], false)? else {
        if s.borrow().addr.is_some() {
            return Err(EINVAL);
        }
        k.unix.autobind(&s)?;
        return Ok(0);
    };
    let mode = match &name {
        Name::Path(np) => {
            super::ovl::socket_file_check(k, np)?;
            0o140000 | (0o777 & !t.fs.get().umask)
        }
        Name::Abstract(_) => 0,
    };
    let now = k.host.now(crate::host::Clock::Realtime) as i64;
    k.unix.bind(&s, name, raw, mode, now)?;
    Ok(0)
}

/// `listen(fd, backlog)`.
pub fn listen<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (_, s) = sock(t, a[0])?;
    let inet_stream = {
        let x = s.borrow();
        inet::is_inet(&x) && x.ty == SOCK_STREAM
    };
    if inet_stream && s.borrow().state != State::Listening {
        inet::autobind(k, &s)?;
        k.ports.check_listen(&s)?;
    }
    unix::listen(&s, super::strace::int(a[1]), cred(t))?;
    Ok(0)
}

/// Waits for a change (or fails with EAGAIN for a non-blocking call or once `timeo` passed).
pub(super) fn wait<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    nonblock: bool,
    timeo: Option<u64>,
) -> SysResult {
    if nonblock {
        return Err(EAGAIN);
    }
    match timeo {
        None => {
            t.request = Some(crate::sched::Request::Block);
            Ok(0)
        }
        Some(ns) => {
            if super::events::block(k, t, Some(ns), None) {
                Err(EAGAIN)
            } else {
                Ok(0)
            }
        }
    }
}

/// Ends a wait with a timeout (the call is done).
pub(super) fn done<P: Platform>(t: &mut Task<P>, timeo: Option<u64>) {
    if timeo.is_some() && t.request.is_none() {
        t.wake_at = None;
    }
}

/// `connect(fd, addr, addrlen)`.
pub fn connect<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (of, s) = sock(t, a[0])?;
    if inet::is_inet(&s.borrow()) {
        return inet::connect(k, t, &s, of.nonblock.get(), a[1], a[2]);
    }
    if netlink::is_netlink(&s.borrow()) {
        return netlink::connect(k, t, &s, a[1], a[2]);
    }
    if s.borrow().ty == SOCK_DGRAM && a[2] & 0xffff_ffff >= 2 {
        let family: u16 = t.mm.lock().read_obj(a[1])?;
        if family == 0 {
            // AF_UNSPEC: a datagram socket forgets its peer.
            let mut x = s.borrow_mut();
            x.state = State::Unconnected;
            x.peer = alloc::rc::Weak::new();
            x.peer_addr = None;
            return Ok(0);
        }
    }
    let (name, _) = read_addr(k, t, a[1], a[2], true)?.ok_or(EINVAL)?;
    let target = lookup(k, &name)?;
    if s.borrow().passcred {
        k.unix.autobind(&s)?;
    }
    if s.borrow().ty == SOCK_DGRAM {
        if target.borrow().ty != SOCK_DGRAM {
            return Err(crate::errno::EPROTOTYPE);
        }
        let taddr = target.borrow().addr.clone();
        let tcred = target.borrow().cred;
        let mut x = s.borrow_mut();
        x.state = State::Connected;
        x.was_connected = true;
        x.peer = Rc::downgrade(&target);
        x.peer_addr = taddr;
        x.peer_cred = tcred;
        return Ok(0);
    }
    let timeo = s.borrow().sndtimeo;
    match unix::connect_stream(&s, &target, cred(t)) {
        Err(e) if e == EAGAIN => {
            let r = wait(k, t, of.nonblock.get(), timeo);
            done(t, timeo);
            r
        }
        r => {
            t.request = None;
            done(t, timeo);
            r.map(|_| 0)
        }
    }
}

/// `accept4(fd, addr, addrlen, flags)`; `accept` arrives here with no flags.
pub fn accept4<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[3] & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(EINVAL);
    }
    let (of, l) = sock(t, a[0])?;
    if !l.borrow().connection() {
        return Err(EOPNOTSUPP);
    }
    let timeo = l.borrow().rcvtimeo;
    let s = match unix::accept(&l) {
        Err(e) if e == EAGAIN => {
            let r = wait(k, t, of.nonblock.get(), timeo);
            return r;
        }
        r => r?,
    };
    done(t, timeo);
    let peer = {
        let x = s.borrow();
        sockaddr_of(x.family, x.peer_addr.as_deref())
    };
    let fd = new_sock_fd(t, s, a[3])?;
    if let Err(e) = write_addr(t, a[1], a[2], &peer) {
        t.files.lock().fds[fd as usize] = None;
        return Err(e);
    }
    Ok(fd)
}

/// `getsockname(fd, addr, addrlen)`.
pub fn getsockname<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (_, s) = sock(t, a[0])?;
    let sa = {
        let x = s.borrow();
        sockaddr_of(x.family, x.addr.as_deref())
    };
    write_addr(t, a[1], a[2], &sa)?;
    Ok(0)
}

/// `getpeername(fd, addr, addrlen)`.
pub fn getpeername<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (_, s) = sock(t, a[0])?;
    let sa = {
        let x = s.borrow();
        if x.state != State::Connected {
            return Err(ENOTCONN);
        }
        sockaddr_of(x.family, x.peer_addr.as_deref())
    };
    write_addr(t, a[1], a[2], &sa)?;
    Ok(0)
}

/// `shutdown(fd, how)`.
pub fn shutdown<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (_, s) = sock(t, a[0])?;
    let how = a[1] & 0xffff_ffff;
    if how > 2 {
        return Err(EINVAL);
    }
    // Linux takes a shutdown in any state (an unconnected socket just stops reading or
    // writing); an inet socket that is neither connected nor listening says ENOTCONN too.
    let unconnected = {
        let x = s.borrow();
        inet::is_inet(&x) && x.state == State::Unconnected
    };
    s.borrow_mut().shutdown(how != 1, how != 0);
    if unconnected {
        return Err(ENOTCONN);
    }
    Ok(0)
}

fn read_iov<P: Platform>(t: &mut Task<P>, addr: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > UIO_MAXIOV {
        return Err(crate::errno::EMSGSIZE);
    }
    let raw: Vec<crate::linux::IoVec> = t.mm.lock().read_objs(addr, cnt as usize)?;
    let mut total = 0u64;
    let mut out = Vec::with_capacity(raw.len());
    for v in raw {
        total = total
            .checked_add(v.iov_len)
            .filter(|&x| (x as i64) >= 0)
            .ok_or(EINVAL)?;
        out.push((v.iov_base, v.iov_len));
    }
    Ok(out)
}

/// The first `total` bytes of `iov`.
pub(super) fn gather<P: Platform>(
    t: &mut Task<P>,
    iov: &[(u64, u64)],
    total: usize,
) -> Result<Vec<u8>, Errno> {
    let mut buf = Vec::new();
    for &(base, len) in iov {
        let n = (len as usize).min(total - buf.len());
        if n == 0 {
            continue;
        }
        let at = buf.len();
        buf.try_reserve(n).map_err(|_| ENOBUFS)?;
        buf.resize(at + n, 0);
        t.mm.lock().copy_in(base, &mut buf[at..])?;
    }
    Ok(buf)
}

/// Scatters `data` over `iov`; the count written.
fn scatter<P: Platform>(t: &mut Task<P>, iov: &[(u64, u64)], data: &[u8]) -> Result<usize, Errno> {
    let mut done = 0;
    for &(base, len) in iov {
        if done == data.len() {
            break;
        }
        let n = (len as usize).min(data.len() - done);
        t.mm.lock().copy_out(base, &data[done..done + n])?;
        done += n;
    }
    Ok(done)
}

/// What a `sendmsg`'s control data carries.
#[derive(Default)]
pub(super) struct Control {
    pub fds: Vec<Rc<OpenFile>>,
    pub cred: Option<Cred>,
    /// The destination address and its length (`sendto`, `msg_name`).
    pub to: Option<(u64, u64)>,
    /// IP-level values for this datagram (hop limit or TTL, traffic class or TOS), IPv4's
    /// and IPv6's ([`inet::send_cmsg`]).
    pub ip4: (Option<i32>, Option<i32>),
    pub ip6: (Option<i32>, Option<i32>),
}

fn read_control<P: Platform>(t: &mut Task<P>, addr: u64, len: u64) -> Result<Control, Errno> {
    let mut c = Control::default();
    if len == 0 {
        return Ok(c);
    }
    if len > OPTMEM_MAX {
        return Err(ENOBUFS);
    }
    let mut raw = alloc::vec![0u8; len as usize];
    t.mm.lock().copy_in(addr, &mut raw)?;
    let mut off = 0usize;
    while off + 16 <= raw.len() {
        let clen = u64::from_ne_bytes(raw[off..off + 8].try_into().unwrap_or_default());
        let level = i32::from_ne_bytes(raw[off + 8..off + 12].try_into().unwrap_or_default());
        let ty = i32::from_ne_bytes(raw[off + 12..off + 16].try_into().unwrap_or_default());
        if clen < 16 || clen > (raw.len() - off) as u64 {
            return Err(EINVAL);
        }
        let data = &raw[off + 16..off + clen as usize];
        if level as u64 == SOL_SOCKET {
            match ty {
                SCM_RIGHTS => {
                    if c.fds.len() + data.len() / 4 > unix::SCM_MAX_FD {
                        return Err(EINVAL);
                    }
                    for ch in data.chunks_exact(4) {
                        let fd = i32::from_ne_bytes(ch.try_into().unwrap_or_default());
                        if fd < 0 {
                            return Err(EBADF);
                        }
                        c.fds.push(file(t, fd as u64)?);
                    }
                }
                SCM_CREDENTIALS => {
                    if data.len() != 12 {
                        return Err(EINVAL);
                    }
                    let w = |i: usize| {
                        u32::from_ne_bytes(data[i..i + 4].try_into().unwrap_or_default())
                    };
                    // The sandbox runs as root: any credentials may be claimed.
                    c.cred = Some(Cred {
                        pid: w(0),
                        uid: w(4),
                        gid: w(8),
                    });
                }
                _ => return Err(EINVAL),
            }
        } else {
            inet::send_cmsg(level as u32, ty as u32, data, &mut c.ip4, &mut c.ip6)?;
        }
        off += (clen as usize).next_multiple_of(8);
    }
    Ok(c)
}

/// The part of `iov` after its first `n` bytes.
fn skip_iov(iov: &[(u64, u64)], mut n: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(iov.len());
    for &(base, len) in iov {
        if n >= len {
            n -= len;
            continue;
        }
        out.push((base.wrapping_add(n), len - n));
        n = 0;
    }
    out
}

/// Sends `iov` (and `ctl`) on `s`, to `to` when given. A blocking stream write goes on
/// until all of it is queued ([`Task::partial_write`] keeps the count across its waits); an
/// error after some bytes went returns their count, as Linux does.
fn send<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    s: &SockRef,
    iov: &[(u64, u64)],
    flags: u64,
    ctl: Control,
) -> SysResult {
    let done0 = core::mem::take(&mut t.partial_write);
    let rest;
    let iov = if done0 > 0 {
        rest = skip_iov(iov, done0);
        &rest[..]
    } else {
        iov
    };
    let r = send_once(k, t, of, s, iov, flags, ctl);
    if t.request.is_some() {
        t.partial_write += done0;
        return r;
    }
    t.partial_write = 0;
    match r {
        Ok(n) => Ok(n + done0),
        Err(_) if done0 > 0 => Ok(done0),
        Err(e) => Err(e),
    }
}

fn send_once<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    s: &SockRef,
    iov: &[(u64, u64)],
    flags: u64,
    ctl: Control,
) -> SysResult {
    if flags & MSG_OOB != 0 {
        return Err(EOPNOTSUPP);
    }
    let nonblock = of.nonblock.get() || flags & MSG_DONTWAIT != 0;
    let (timeo, inet, ty) = {
        let x = s.borrow();
        (x.sndtimeo, inet::is_inet(&x), x.ty)
    };
    let mut ctl = ctl;
    if netlink::is_netlink(&s.borrow()) {
        return netlink::send(k, t, s, iov, ctl.to);
    }
    if inet {
        if ty == SOCK_DGRAM {
            return inet::send_dgram(k, t, s, iov, &ctl);
        }
        if !ctl.fds.is_empty() || ctl.cred.is_some() {
            return Err(EINVAL);
        }
        // TCP ignores a destination; an unconnected one is EPIPE (Linux's
        // `sk_stream_wait_connect`).
        ctl.to = None;
        let pending = s.borrow_mut().err.take();
        if let Some(e) = pending {
            if e == crate::errno::EPIPE && flags & MSG_NOSIGNAL == 0 {
                signal::raise(t, signal::SIGPIPE);
            }
            return Err(e);
        }
        let (connected, peer_gone, shut) = {
            let x = s.borrow();
            (
                x.state == State::Connected,
                x.peer.strong_count() == 0,
                x.snd_shut,
            )
        };
        if !connected {
            if flags & MSG_NOSIGNAL == 0 {
                signal::raise(t, signal::SIGPIPE);
            }
            return Err(crate::errno::EPIPE);
        }
        if peer_gone && !shut {
            // The first write after the peer closed goes out and is answered by a reset:
            // the next write is EPIPE (Linux's CLOSE_WAIT then `tcp_reset`).
            let total = (iov.iter().fold(0u64, |a, v| a.saturating_add(v.1)) as usize).min(MAX_RW);
            gather(t, iov, total.min(1 << 16))?;
            let mut x = s.borrow_mut();
            x.snd_shut = true;
            x.err = Some(crate::errno::EPIPE);
            x.gen_in = crate::events::stamp();
            x.gen_out = x.gen_in;
            drop(x);
            crate::sched::note_progress();
            return Ok(total as u64);
        }
    }
    let target = match ctl.to {
        Some((addr, len)) if addr != 0 => {
            if s.borrow().connection() {
                let st = s.borrow().state;
                return Err(if st == State::Connected {
                    EISCONN
                } else {
                    EOPNOTSUPP
                });
            }
            let (name, _) = read_addr(k, t, addr, len, true)?.ok_or(EINVAL)?;
            Some(lookup(k, &name)?)
        }
        _ => None,
    };
    // A sender asking for credentials gets a name, as Linux autobinds it.
    if s.borrow().passcred {
        k.unix.autobind(s)?;
    }
    let dest = {
        let x = s.borrow();
        unix::send_target(&x, target)
    };
    let dest = match dest {
        Ok(d) => d,
        Err(SendErr::Pipe) => {
            if flags & MSG_NOSIGNAL == 0 {
                signal::raise(t, signal::SIGPIPE);
            }
            return Err(crate::errno::EPIPE);
        }
        Err(SendErr::Err(e)) => {
            if e == ECONNREFUSED && !s.borrow().connection() {
                // The datagram peer is gone: disconnect, as Linux does.
                let mut x = s.borrow_mut();
                x.state = State::Unconnected;
            }
            return Err(e);
        }
        Err(SendErr::Full) => return wait(k, t, nonblock, timeo),
    };
    // Sized before anything is copied: the Sentry holds no more than the queue takes.
    let total = (iov.iter().map(|v| v.1).sum::<u64>() as usize).min(MAX_RW);
    let (ty, sndbuf, from) = {
        let x = s.borrow();
        (x.ty, x.sndbuf, x.addr.clone())
    };
    let msg_cred = ctl.cred.unwrap_or_else(|| cred(t));
    let same = Rc::ptr_eq(&dest, s);
    {
        let d = if same { None } else { Some(dest.borrow()) };
        let dref: &Sock = match &d {
            Some(d) => d,
            None => &s.borrow(),
        };
        if ty == SOCK_DGRAM {
            unix::dgram_accepts(s, dref)?;
        }
        if ctl
            .fds
            .iter()
            .any(|f| matches!(&f.file, File::Socket(x) if Rc::ptr_eq(x, &dest)))
        {
            return Err(crate::errno::ETOOMANYREFS);
        }
        unix::check_passing(dref, &ctl.fds)?;
    }
    let n = if ty == SOCK_STREAM {
        let room = dest.borrow().stream_room(sndbuf);
        if room == 0 && total > 0 {
            return wait(k, t, nonblock, timeo);
        }
        total.min(room)
    } else {
        unix::check_msg_size(total, sndbuf)?;
        if !dest.borrow().room_for(total, ctl.fds.len(), sndbuf) {
            return wait(k, t, nonblock, timeo);
        }
        total
    };
    let data = gather(t, iov, n)?;
    done(t, timeo);
    if ty == SOCK_STREAM && n == 0 && ctl.fds.is_empty() {
        return Ok(0);
    }
    unix::mark_inflight(&ctl.fds);
    dest.borrow_mut().push(Msg {
        data,
        off: 0,
        fds: ctl.fds,
        cred: msg_cred,
        from,
        ip: None,
    });
    if ty == SOCK_STREAM && n < total && !nonblock {
        // The rest waits for room; what went is counted (see `send`).
        let r = wait(k, t, nonblock, timeo);
        if t.request.is_some() {
            t.partial_write = n as u64;
            return r;
        }
    }
    Ok(n as u64)
}

/// `sendfile` into a connected stream socket: queues what fits of `data` (a blocking
/// socket with no room waits; the call is made again).
pub(super) fn send_bytes<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    s: &SockRef,
    data: &[u8],
) -> SysResult {
    let (dest, sndbuf, timeo) = {
        let x = s.borrow();
        if x.ty != SOCK_STREAM {
            return Err(EINVAL);
        }
        match unix::send_target(&x, None) {
            Ok(d) => (d, x.sndbuf, x.sndtimeo),
            Err(SendErr::Err(e)) => return Err(e),
            Err(_) => {
                drop(x);
                signal::raise(t, signal::SIGPIPE);
                return Err(crate::errno::EPIPE);
            }
        }
    };
    let room = dest.borrow().stream_room(sndbuf);
    if room == 0 {
        return wait(k, t, of.nonblock.get(), timeo);
    }
    let n = data.len().min(room);
    let from = s.borrow().addr.clone();
    dest.borrow_mut().push(Msg {
        data: data[..n].to_vec(),
        off: 0,
        fds: Vec::new(),
        cred: cred(t),
        from,
        ip: None,
    });
    Ok(n as u64)
}

/// The interface requests (`SIOCGIF*`, `SIOCGIFCONF`) about the sandbox's one interface,
/// `lo` (index 1, 127.0.0.1/8, MTU 65536); requests that set anything are `EPERM`, names
/// other than `lo` `ENODEV`.
pub(super) fn dev_ioctl<P: Platform>(t: &mut Task<P>, cmd: u64, arg: u64) -> SysResult {
    const SIOCGIFNAME: u64 = 0x8910;
    const SIOCGIFCONF: u64 = 0x8912;
    const SIOCGIFFLAGS: u64 = 0x8913;
    const SIOCGIFADDR: u64 = 0x8915;
    const SIOCGIFNETMASK: u64 = 0x891b;
    const SIOCGIFMTU: u64 = 0x8921;
    const SIOCGIFHWADDR: u64 = 0x8927;
    const SIOCGIFINDEX: u64 = 0x8933;
    const SIOCGIFTXQLEN: u64 = 0x8942;
    /// `sizeof(struct ifreq)`.
    const IFREQ: usize = 40;
    let sin = |ip: [u8; 4]| inet::sockaddr(AF_INET, Some(Endpoint::v4(ip, 0)));
    if cmd == SIOCGIFCONF {
        // struct ifconf { int ifc_len; union { char *ifc_buf; struct ifreq *ifc_req; } }.
        let (len, buf): (i32, u64) = {
            let raw: [u64; 2] = t.mm.lock().read_obj(arg)?;
            (raw[0] as u32 as i32, raw[1])
        };
        if buf == 0 {
            t.mm.lock().write_obj(arg, &(IFREQ as i32))?;
            return Ok(0);
        }
        let mut n = 0;
        if len >= IFREQ as i32 {
            let mut req = [0u8; IFREQ];
            req[..2].copy_from_slice(b"lo");
            req[16..32].copy_from_slice(&sin([127, 0, 0, 1]));
            t.mm.lock().copy_out(buf, &req)?;
            n = IFREQ as i32;
        }
        t.mm.lock().write_obj(arg, &n)?;
        return Ok(0);
    }
    let mut req: [u8; IFREQ] = t.mm.lock().read_obj(arg)?;
    if cmd == SIOCGIFNAME {
        let index = i32::from_ne_bytes([req[16], req[17], req[18], req[19]]);
        if index != inet::LO_INDEX as i32 {
            return Err(crate::errno::ENODEV);
        }
        req[..16].fill(0);
        req[..2].copy_from_slice(b"lo");
        t.mm.lock().copy_out(arg, &req[..16])?;
        return Ok(0);
    }
    let name_end = req[..16].iter().position(|&b| b == 0).unwrap_or(16);
    if &req[..name_end] != b"lo" {
        return Err(crate::errno::ENODEV);
    }
    let value: Vec<u8> = match cmd {
        SIOCGIFFLAGS => 0x49u16.to_ne_bytes().to_vec(), // IFF_UP | IFF_LOOPBACK | IFF_RUNNING
        SIOCGIFADDR => sin([127, 0, 0, 1]),
        SIOCGIFNETMASK => sin([255, 0, 0, 0]),
        SIOCGIFMTU => 65536i32.to_ne_bytes().to_vec(),
        SIOCGIFINDEX => (inet::LO_INDEX as i32).to_ne_bytes().to_vec(),
        SIOCGIFTXQLEN => 1000i32.to_ne_bytes().to_vec(),
        SIOCGIFHWADDR => {
            let mut v = 772u16.to_ne_bytes().to_vec(); // ARPHRD_LOOPBACK, zero address
            v.resize(16, 0);
            v
        }
        // SIOCS*: the sandbox's network cannot be changed from inside.
        // (SIOCADDRT, SIOCDELRT, SIOCSIFFLAGS/ADDR/DSTADDR/BRDADDR/NETMASK/METRIC/MTU/NAME/
        // HWADDR, SIOCSIFTXQLEN.)
        0x890b | 0x890c | 0x8914 | 0x8916 | 0x8918 | 0x891a | 0x891c | 0x891e | 0x8922 | 0x8923
        | 0x8924 | 0x8943 => return Err(crate::errno::EPERM),
        _ => return Err(EINVAL),
    };
    t.mm.lock().copy_out(arg.wrapping_add(16), &value)?;
    Ok(0)
}

/// What a receive got, for `recvmsg`'s fields.
struct Received {
    n: usize,
    flags: u32,
    from: Option<Option<Vec<u8>>>,
    cred: Option<Cred>,
    fds: Vec<Rc<OpenFile>>,
    /// A datagram's IP header fields (inet ancillary data).
    ip: Option<unix::IpInfo>,
}

fn recv<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    s: &SockRef,
    iov: &[(u64, u64)],
    flags: u64,
) -> Result<Option<Received>, Errno> {
    if flags & MSG_OOB != 0 {
        return Err(EOPNOTSUPP);
    }
    let nonblock = of.nonblock.get() || flags & MSG_DONTWAIT != 0;
    let peek = flags & MSG_PEEK != 0;
    let want = (iov.iter().map(|v| v.1).sum::<u64>() as usize).min(MAX_RW);
    let (ty, timeo) = {
        let x = s.borrow();
        (x.ty, x.rcvtimeo)
    };
    let empty = s.borrow().rx.is_empty();
    if empty {
        let mut x = s.borrow_mut();
        // A reset that answered a write after the peer's FIN: reads see the FIN (EOF).
        let fin_first = x.family != unix::AF_UNIX
            && x.ty == SOCK_STREAM
            && x.rcv_shut
            && x.err == Some(crate::errno::EPIPE);
        if (x.connection() || x.family != unix::AF_UNIX) && !fin_first {
            if let Some(e) = x.err.take() {
                return Err(e);
            }
        }
        if x.rcv_shut {
            return Ok(Some(Received {
                n: 0,
                flags: 0,
                from: None,
                cred: None,
                fds: Vec::new(),
                ip: None,
            }));
        }
        if x.connection() && x.state != State::Connected {
            return Err(if ty == SOCK_STREAM && x.family == unix::AF_UNIX {
                EINVAL
            } else {
                ENOTCONN
            });
        }
        drop(x);
        wait(k, t, nonblock, timeo)?;
        return Ok(None);
    }
    if ty != SOCK_STREAM {
        let (bytes, full, fds, cred, from, ip) = {
            let x = s.borrow();
            let m = &x.rx[0];
            let n = want.min(m.data.len());
            (
                m.data[..n].to_vec(),
                m.data.len(),
                m.fds.clone(),
                m.cred,
                m.from.clone(),
                m.ip,
            )
        };
        scatter(t, iov, &bytes)?;
        done(t, timeo);
        let taken = if peek { None } else { s.borrow_mut().pop() };
        let fds = match taken {
            Some(mut m) => core::mem::take(&mut m.fds),
            None => fds,
        };
        if !peek {
            unmark(&fds);
        }
        let mut fl = if full > bytes.len() {
            MSG_TRUNC as u32
        } else {
            0
        };
        if ty == SOCK_SEQPACKET {
            fl |= MSG_EOR;
        }
        return Ok(Some(Received {
            n: if flags & MSG_TRUNC != 0 {
                full
            } else {
                bytes.len()
            },
            flags: fl,
            from: Some(from),
            cred: Some(cred),
            fds,
            ip,
        }));
    }
    // Stream: bytes across messages, up to a message that carries descriptors.
    let (bytes, fds, cred, from, available) = {
        let x = s.borrow();
        let mut bytes = Vec::new();
        let mut fds = Vec::new();
        let mut cred = None;
        let mut from = None;
        for (i, m) in x.rx.iter().enumerate() {
            if bytes.len() >= want {
                break;
            }
            if i > 0 && !m.fds.is_empty() {
                break;
            }
            let rest = m.remaining();
            let n = rest.len().min(want - bytes.len());
            bytes.extend_from_slice(&rest[..n]);
            if i == 0 {
                fds = m.fds.clone();
                cred = Some(m.cred);
                from = Some(m.from.clone());
            }
            if !m.fds.is_empty() {
                break;
            }
        }
        let available: usize = x.rx.iter().map(|m| m.remaining().len()).sum();
        (bytes, fds, cred, from, available)
    };
    if flags & MSG_WAITALL != 0 && !peek && bytes.len() < want && fds.is_empty() {
        let x = s.borrow();
        let sndbuf = x
            .peer
            .upgrade()
            .map_or(0, |p| p.try_borrow().map_or(0, |p| p.sndbuf));
        let can_grow = !x.rcv_shut && x.stream_room(sndbuf) > 0 && available < want;
        drop(x);
        if can_grow && !nonblock {
            wait(k, t, nonblock, timeo)?;
            return Ok(None);
        }
    }
    scatter(t, iov, &bytes)?;
    done(t, timeo);
    let mut fds_out = fds;
    if !peek {
        let mut dropped = Vec::new();
        let mut x = s.borrow_mut();
        if !x.rx[0].fds.is_empty() {
            let m = &mut x.rx[0];
            let taken = core::mem::take(&mut m.fds);
            x.rx_fds -= taken.len();
            fds_out = taken;
        }
        let mut left = bytes.len();
        while left > 0 {
            let n = left.min(x.rx[0].remaining().len());
            left -= n;
            if let Some(m) = x.consume(n) {
                dropped.push(m);
            }
        }
        drop(x);
        drop(dropped);
        unmark(&fds_out);
    }
    Ok(Some(Received {
        n: bytes.len(),
        flags: 0,
        from,
        cred,
        fds: fds_out,
        ip: None,
    }))
}

/// The sockets among `fds` are no longer in flight.
fn unmark(fds: &[Rc<OpenFile>]) {
    for f in fds {
        if let File::Socket(s) = &f.file {
            let mut s = s.borrow_mut();
            s.inflight = s.inflight.saturating_sub(1);
        }
    }
}

/// `read`/`write`/`readv`/`writev` on a socket.
pub fn sock_rw<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    s: &SockRef,
    iov: &[(u64, u64)],
    to_app: bool,
) -> SysResult {
    if to_app {
        let r = recv(k, t, of, s, iov, 0)?;
        Ok(r.map_or(0, |r| {
            release_all(k, r.fds);
            r.n as u64
        }))
    } else {
        send(k, t, of, s, iov, 0, Control::default())
    }
}

fn release_all(k: &Kernel, fds: Vec<Rc<OpenFile>>) {
    for f in fds {
        crate::file::release(k.host, f);
    }
}

/// `sendto(fd, buf, len, flags, addr, addrlen)`; `send` is this with no address.
pub fn sendto<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (of, s) = sock(t, a[0])?;
    let ctl = Control {
        to: Some((a[4], a[5])),
        ..Default::default()
    };
    send(k, t, &of, &s, &[(a[1], a[2])], a[3], ctl)
}

/// `recvfrom(fd, buf, len, flags, addr, addrlen)`.
pub fn recvfrom<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (of, s) = sock(t, a[0])?;
    let Some(r) = recv(k, t, &of, &s, &[(a[1], a[2])], a[3])? else {
        return Ok(0);
    };
    let n = r.n as u64;
    let from = r.from.clone();
    release_all(k, r.fds);
    let family = s.borrow().family;
    if a[4] != 0 {
        match from {
            Some(Some(addr)) => write_addr(t, a[4], a[5], &sockaddr_of(family, Some(&addr)))?,
            _ => {
                if a[5] != 0 {
                    t.mm.lock().write_obj(a[5], &0i32)?;
                }
            }
        }
    }
    Ok(n)
}

/// `struct msghdr`.
fn read_msghdr<P: Platform>(t: &mut Task<P>, addr: u64) -> Result<[u64; 7], Errno> {
    t.mm.lock().read_obj(addr)
}

/// `sendmsg(fd, msg, flags)`.
pub fn sendmsg<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (of, s) = sock(t, a[0])?;
    let h = read_msghdr(t, a[1])?;
    let iov = read_iov(t, h[2], h[3])?;
    let mut ctl = read_control(t, h[4], h[5])?;
    ctl.to = (h[0] != 0).then_some((h[0], h[1] & 0xffff_ffff));
    send(k, t, &of, &s, &iov, a[2], ctl)
}

/// Appends a control message to `out` within `space`, as Linux's `put_cmsg` (truncated, with
/// MSG_CTRUNC, where it does not fit).
fn put_cmsg(out: &mut Vec<u8>, space: usize, flags: &mut u32, level: i32, ty: i32, data: &[u8]) {
    let left = space - out.len();
    if left < 16 {
        *flags |= MSG_CTRUNC;
        return;
    }
    let clen = 16 + data.len();
    let mut c = Vec::with_capacity(clen.next_multiple_of(8));
    c.extend_from_slice(&(clen as u64).to_ne_bytes());
    c.extend_from_slice(&level.to_ne_bytes());
    c.extend_from_slice(&ty.to_ne_bytes());
    c.extend_from_slice(data);
    if left < clen {
        *flags |= MSG_CTRUNC;
    }
    c.resize(clen.next_multiple_of(8).min(left), 0);
    out.extend_from_slice(&c);
}

/// `recvmsg(fd, msg, flags)`.
pub fn recvmsg<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (of, s) = sock(t, a[0])?;
    let h = read_msghdr(t, a[1])?;
    let iov = read_iov(t, h[2], h[3])?;
    let ctl_space = h[5];
    if (ctl_space as i64) < 0 {
        return Err(EINVAL);
    }
    let Some(r) = recv(k, t, &of, &s, &iov, a[2])? else {
        return Ok(0);
    };
    let space = (ctl_space as usize).min(1 << 16);
    let mut ctl = Vec::new();
    let mut flags = r.flags;
    if s.borrow().passcred {
        if let Some(c) = r.cred {
            let mut d = Vec::with_capacity(12);
            for v in [c.pid, c.uid, c.gid] {
                d.extend_from_slice(&v.to_ne_bytes());
            }
            put_cmsg(
                &mut ctl,
                space,
                &mut flags,
                SOL_SOCKET as i32,
                SCM_CREDENTIALS,
                &d,
            );
        }
    }
    if let Some(ip) = &r.ip {
        let cmsgs = inet::recv_cmsgs(&s.borrow(), ip);
        for (level, ty, d) in cmsgs {
            put_cmsg(&mut ctl, space, &mut flags, level as i32, ty as i32, &d);
        }
    }
    let mut fds = r.fds.into_iter();
    if fds.len() > 0 {
        let left = space - ctl.len();
        let fdmax = if left > 16 { (left - 16) / 4 } else { 0 };
        let mut installed = Vec::new();
        for _ in 0..fdmax {
            let Some(f) = fds.next() else { break };
            match alloc_fd(t, 0, f.clone()) {
                Ok(fd) => {
                    if a[2] & MSG_CMSG_CLOEXEC != 0 {
                        t.files.lock().cloexec.insert(fd);
                    } else {
                        t.files.lock().cloexec.remove(&fd);
                    }
                    installed.push(fd as i32);
                }
                Err(_) => {
                    crate::file::release(k.host, f);
                    break;
                }
            }
        }
        if fds.len() > 0 || installed.is_empty() {
            flags |= MSG_CTRUNC;
        }
        if !installed.is_empty() {
            let mut d = Vec::new();
            for fd in &installed {
                d.extend_from_slice(&fd.to_ne_bytes());
            }
            put_cmsg(
                &mut ctl,
                space,
                &mut flags,
                SOL_SOCKET as i32,
                SCM_RIGHTS,
                &d,
            );
        }
    }
    release_all(k, fds.collect());
    if !ctl.is_empty() {
        if h[4] == 0 {
            return Err(EFAULT);
        }
        t.mm.lock().copy_out(h[4], &ctl)?;
    }
    // msg_namelen (offset 8), msg_controllen (40), msg_flags (48).
    if h[0] != 0 {
        let family = s.borrow().family;
        let sa = match &r.from {
            Some(Some(addr)) => sockaddr_of(family, Some(addr)),
            _ => Vec::new(),
        };
        let n = sa.len().min((h[1] & 0xffff_ffff) as usize);
        t.mm.lock().copy_out(h[0], &sa[..n])?;
        t.mm.lock().write_obj(a[1] + 8, &(sa.len() as u32))?;
    } else {
        t.mm.lock().write_obj(a[1] + 8, &0u32)?;
    }
    t.mm.lock().write_obj(a[1] + 40, &(ctl.len() as u64))?;
    t.mm.lock().write_obj(a[1] + 48, &flags)?;
    Ok(r.n as u64)
}

const SO_DEBUG: u64 = 1;
const SO_REUSEADDR: u64 = 2;
const SO_TYPE: u64 = 3;
const SO_ERROR: u64 = 4;
const SO_DONTROUTE: u64 = 5;
const SO_BROADCAST: u64 = 6;
const SO_SNDBUF: u64 = 7;
const SO_RCVBUF: u64 = 8;
const SO_KEEPALIVE: u64 = 9;
const SO_LINGER: u64 = 13;
const SO_PASSCRED: u64 = 16;
const SO_PEERCRED: u64 = 17;
const SO_RCVLOWAT: u64 = 18;
const SO_RCVTIMEO: u64 = 20;
const SO_SNDTIMEO: u64 = 21;
const SO_ACCEPTCONN: u64 = 30;
const SO_SNDBUFFORCE: u64 = 32;
const SO_RCVBUFFORCE: u64 = 33;
const SO_PROTOCOL: u64 = 38;
const SO_DOMAIN: u64 = 39;

/// `getsockopt(fd, level, name, val, len)`.
pub fn getsockopt<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (_, s) = sock(t, a[0])?;
    if a[4] == 0 {
        return Err(EFAULT);
    }
    let len: i32 = t.mm.lock().read_obj(a[4])?;
    if len < 0 {
        return Err(EINVAL);
    }
    let int = |v: i64| (v as i32).to_ne_bytes().to_vec();
    let (level, name) = ((a[1] & 0xffff_ffff) as u32, (a[2] & 0xffff_ffff) as u32);
    let kept = {
        let x = s.borrow();
        if inet::is_inet(&x) {
            match inet::getsockopt(&x, level, name) {
                Some(r) => Some(r?),
                None if u64::from(level) != SOL_SOCKET => {
                    return Err(if inet::known_level(&x, level) {
                        ENOPROTOOPT
                    } else {
                        inet::unknown_level_get(&x)
                    })
                }
                None => None,
            }
        } else {
            None
        }
    };
    let kept = match kept {
        None if netlink::is_netlink(&s.borrow()) => {
            let x = s.borrow();
            if level == netlink::SOL_NETLINK {
                Some(netlink::getsockopt(&x, name).ok_or(ENOPROTOOPT)?)
            } else if u64::from(level) == SOL_SOCKET && name == SO_TYPE as u32 {
                x.opt(1, 3)
            } else {
                None
            }
        }
        k => k,
    };
    if kept.is_none() && a[1] & 0xffff_ffff != SOL_SOCKET {
        return Err(EOPNOTSUPP);
    }
    let val: Vec<u8> = if let Some(v) = kept {
        int(v.into())
    } else {
        let mut x = s.borrow_mut();
        match a[2] & 0xffff_ffff {
            SO_TYPE => int(x.ty as i64),
            SO_ERROR => int(x.err.take().map_or(0, |e| e.0 as i64)),
            SO_SNDBUF => int(x.sndbuf as i64),
            SO_RCVBUF => int(x.rcvbuf as i64),
            SO_PASSCRED => int(x.passcred as i64),
            SO_DOMAIN => int(x.family.into()),
            SO_PROTOCOL => int(0),
            SO_ACCEPTCONN => int((x.state == State::Listening) as i64),
            SO_REUSEADDR | SO_KEEPALIVE | SO_DEBUG | SO_DONTROUTE | SO_BROADCAST => int(0),
            SO_RCVLOWAT => int(1),
            SO_LINGER => {
                let (on, secs) = x.linger.map_or((0i32, 0i32), |l| (1, l));
                let mut v = on.to_ne_bytes().to_vec();
                v.extend_from_slice(&secs.to_ne_bytes());
                v
            }
            SO_PEERCRED => {
                let c = if x.state == State::Connected || x.connection() && x.was_connected {
                    x.peer_cred
                } else {
                    Cred {
                        pid: 0,
                        uid: u32::MAX,
                        gid: u32::MAX,
                    }
                };
                let mut v = Vec::new();
                for w in [c.pid, c.uid, c.gid] {
                    v.extend_from_slice(&w.to_ne_bytes());
                }
                v
            }
            SO_RCVTIMEO | SO_SNDTIMEO => {
                let ns = if a[2] & 0xffff_ffff == SO_RCVTIMEO {
                    x.rcvtimeo
                } else {
                    x.sndtimeo
                }
                .unwrap_or(0);
                let mut v = ((ns / 1_000_000_000) as i64).to_ne_bytes().to_vec();
                v.extend_from_slice(&(((ns % 1_000_000_000) / 1000) as i64).to_ne_bytes());
                v
            }
            _ => return Err(ENOPROTOOPT),
        }
    };
    let n = val.len().min(len as usize);
    t.mm.lock().copy_out(a[3], &val[..n])?;
    t.mm.lock().write_obj(a[4], &(n as i32))?;
    Ok(0)
}

/// `setsockopt(fd, level, name, val, len)`.
pub fn setsockopt<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (_, s) = sock(t, a[0])?;
    let len = a[4] & 0xffff_ffff;
    let name = a[2] & 0xffff_ffff;
    let level = (a[1] & 0xffff_ffff) as u32;
    let inet = inet::is_inet(&s.borrow());
    let generic = u64::from(level) == SOL_SOCKET
        && (name == SO_RCVTIMEO || name == SO_SNDTIMEO || name == SO_LINGER);
    if inet && !generic {
        let sol_socket = u64::from(level) == SOL_SOCKET;
        if !sol_socket && !inet::known_level(&s.borrow(), level) {
            return Err(ENOPROTOOPT);
        }
        if len < 4 {
            return Err(EINVAL);
        }
        let v: i32 = t.mm.lock().read_obj(a[3])?;
        if let Some(r) = inet::setsockopt(&mut s.borrow_mut(), level, name as u32, v) {
            r?;
            return Ok(0);
        }
        if !sol_socket {
            return Err(ENOPROTOOPT);
        }
    }
    if level == netlink::SOL_NETLINK && netlink::is_netlink(&s.borrow()) {
        if len < 4 {
            return Err(EINVAL);
        }
        let v: i32 = t.mm.lock().read_obj(a[3])?;
        if netlink::setsockopt(&mut s.borrow_mut(), name as u32, v) {
            return Ok(0);
        }
        return Err(ENOPROTOOPT);
    }
    if a[1] & 0xffff_ffff != SOL_SOCKET {
        return Err(EOPNOTSUPP);
    }
    if name == SO_LINGER {
        if len < 8 {
            return Err(EINVAL);
        }
        let l: [i32; 2] = t.mm.lock().read_obj(a[3])?;
        s.borrow_mut().linger = (l[0] != 0).then_some(l[1].max(0));
        return Ok(0);
    }
    if name == SO_RCVTIMEO || name == SO_SNDTIMEO {
        if len < 16 {
            return Err(EINVAL);
        }
        let tv: crate::linux::Timeval = t.mm.lock().read_obj(a[3])?;
        if tv.tv_usec < 0 || tv.tv_usec >= 1_000_000 {
            return Err(crate::errno::EDOM);
        }
        let ns = if tv.tv_sec < 0 {
            0
        } else {
            (tv.tv_sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(tv.tv_usec as u64 * 1000)
        };
        let v = (ns != 0).then_some(ns);
        let mut x = s.borrow_mut();
        if name == SO_RCVTIMEO {
            x.rcvtimeo = v;
        } else {
            x.sndtimeo = v;
        }
        return Ok(0);
    }
    if len < 4 {
        return Err(EINVAL);
    }
    let v: i32 = t.mm.lock().read_obj(a[3])?;
    let mut x = s.borrow_mut();
    match name {
        SO_SNDBUF | SO_SNDBUFFORCE => {
            let v = usize::try_from(v.max(0)).unwrap_or(0).min(unix::MAX_BUF);
            x.sndbuf = (v * 2).max(unix::MIN_SNDBUF);
            x.gen_out = crate::events::stamp();
            crate::sched::note_progress();
        }
        SO_RCVBUF | SO_RCVBUFFORCE => {
            let v = usize::try_from(v.max(0)).unwrap_or(0).min(unix::MAX_BUF);
            x.rcvbuf = (v * 2).max(unix::MIN_RCVBUF);
        }
        SO_PASSCRED => x.passcred = v != 0,
        SO_REUSEADDR | SO_KEEPALIVE | SO_DEBUG | SO_DONTROUTE | SO_BROADCAST | SO_RCVLOWAT => {}
        _ => return Err(ENOPROTOOPT),
    }
    Ok(0)
}
