//! The `AF_INET`/`AF_INET6` side of the socket syscalls, over the loopback network
//! ([`crate::net::inet`]): `sockaddr_in`/`sockaddr_in6` in and out with Linux's checks,
//! `socket`, `bind`, `listen`'s autobind, `connect` (TCP: to a listener, non-blocking as
//! `EINPROGRESS`; UDP: a default peer), UDP sends, and the IP/TCP-level socket options.
//! Everything a connected TCP socket does after that (queues, reads, writes, readiness) is
//! the stream path of [`super::socket`].

use alloc::vec::Vec;

use super::socket::{wait, Control};
use crate::errno::{
    Errno, SysResult, EACCES, EADDRNOTAVAIL, EAFNOSUPPORT, EAGAIN, ECONNREFUSED, EDESTADDRREQ,
    EINPROGRESS, EINVAL, EISCONN, EMSGSIZE, ENETUNREACH, EPERM, EPROTONOSUPPORT, ESOCKTNOSUPPORT,
};
use crate::kernel::{Kernel, Task};
use crate::net::inet::{self, Endpoint, AF_INET, AF_INET6, IPPROTO_UDPLITE};
use crate::net::unix::{self, IpInfo, Msg, Sock, SockRef, State, SOCK_DGRAM, SOCK_STREAM};
use crate::platform::Platform;

const IPPROTO_IP: u32 = 0;
const IPPROTO_ICMP: u64 = 1;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const IPPROTO_IPV6: u32 = 41;
const IPPROTO_ICMPV6: u64 = 58;
const IPV6_V6ONLY: u32 = 26;
const IPV6_UNICAST_HOPS: u32 = 16;
const IPV6_RECVPKTINFO: u32 = 49;
const IPV6_PKTINFO: u32 = 50;
const IPV6_RECVHOPLIMIT: u32 = 51;
const IPV6_HOPLIMIT: u32 = 52;
const IPV6_RECVTCLASS: u32 = 66;
const IPV6_TCLASS: u32 = 67;
const IP_TOS: u32 = 1;
const IP_TTL: u32 = 2;
const IP_PKTINFO: u32 = 8;
const IP_RECVTTL: u32 = 12;
const IP_RECVTOS: u32 = 13;
/// The loopback interface's index (`lo`, as on Linux).
pub const LO_INDEX: u32 = 1;
/// `sizeof(struct sockaddr_in)`, and the shortest `sockaddr_in6` Linux takes
/// (`SIN6_LEN_RFC2133`, without `sin6_scope_id`) and its full size.
const SIN_LEN: u64 = 16;
const SIN6_LEN_RFC2133: u64 = 24;
const SIN6_LEN: usize = 28;
/// The largest UDP payloads (65535 less the IPv4 and UDP headers; IPv6's payload length
/// does not count its own header).
const UDP4_MAX: usize = 65507;
const UDP6_MAX: usize = 65527;

/// The options kept per socket and reported back (level, name, default). Linux's defaults
/// on a loopback; values are kept as set (booleans as 0/1, as Linux reports them).
const KEPT: &[(u32, u32, i32)] = &[
    (1, 6, 0),                    // SO_BROADCAST
    (1, 9, 0),                    // SO_KEEPALIVE
    (1, 10, 0),                   // SO_OOBINLINE
    (1, 12, 0),                   // SO_PRIORITY
    (1, 18, 1),                   // SO_RCVLOWAT
    (1, 36, 0),                   // SO_MARK
    (IPPROTO_TCP, 1, 0),          // TCP_NODELAY
    (IPPROTO_TCP, 2, 536),        // TCP_MAXSEG (before a connection: the default MSS)
    (IPPROTO_TCP, 3, 0),          // TCP_CORK
    (IPPROTO_TCP, 4, 7200),       // TCP_KEEPIDLE
    (IPPROTO_TCP, 5, 75),         // TCP_KEEPINTVL
    (IPPROTO_TCP, 6, 9),          // TCP_KEEPCNT
    (IPPROTO_TCP, 7, 0),          // TCP_SYNCNT (0: the sysctl's 6)
    (IPPROTO_TCP, 8, 60),         // TCP_LINGER2
    (IPPROTO_TCP, 9, 0),          // TCP_DEFER_ACCEPT
    (IPPROTO_TCP, 10, 0),         // TCP_WINDOW_CLAMP
    (IPPROTO_TCP, 12, 1),         // TCP_QUICKACK
    (IPPROTO_TCP, 18, 0),         // TCP_USER_TIMEOUT
    (IPPROTO_TCP, 23, 0),         // TCP_FASTOPEN
    (IPPROTO_TCP, 25, 0),         // TCP_NOTSENT_LOWAT
    (IPPROTO_IP, 1, 0),           // IP_TOS
    (IPPROTO_IP, 2, 64),          // IP_TTL
    (IPPROTO_IP, 8, 0),           // IP_PKTINFO
    (IPPROTO_IP, 12, 0),          // IP_RECVTTL
    (IPPROTO_IP, 13, 0),          // IP_RECVTOS
    (IPPROTO_IP, 10, 1),          // IP_MTU_DISCOVER (IP_PMTUDISC_WANT)
    (IPPROTO_IP, 11, 0),          // IP_RECVERR
    (IPPROTO_IP, 32, 1),          // IP_MULTICAST_TTL
    (IPPROTO_IP, 33, 1),          // IP_MULTICAST_LOOP
    (IPPROTO_IPV6, 16, 64),       // IPV6_UNICAST_HOPS
    (IPPROTO_IPV6, 18, 1),        // IPV6_MULTICAST_HOPS
    (IPPROTO_IPV6, 19, 1),        // IPV6_MULTICAST_LOOP
    (IPPROTO_IPV6, 23, 0),        // IPV6_MTU_DISCOVER
    (IPPROTO_IPV6, 25, 0),        // IPV6_RECVERR
    (IPPROTO_IPV6, 49, 0),        // IPV6_RECVPKTINFO
    (IPPROTO_IPV6, 51, 0),        // IPV6_RECVHOPLIMIT
    (IPPROTO_IPV6, 66, 0),        // IPV6_RECVTCLASS
    (IPPROTO_IPV6, 67, 0),        // IPV6_TCLASS
    (IPPROTO_UDPLITE_OPT, 10, 0), // UDPLITE_SEND_CSCOV
    (IPPROTO_UDPLITE_OPT, 11, 0), // UDPLITE_RECV_CSCOV
];
const IPPROTO_UDPLITE_OPT: u32 = IPPROTO_UDPLITE as u32;

/// Which kept options a socket type has (TCP's level only on stream sockets; IPv6's only
/// on `AF_INET6` ones).
fn applies(s: &Sock, level: u32) -> bool {
    match level {
        IPPROTO_TCP => s.ty == SOCK_STREAM,
        IPPROTO_IPV6 => s.family == AF_INET6,
        IPPROTO_UDPLITE_OPT => s.proto == IPPROTO_UDPLITE,
        _ => true,
    }
}

/// A kept option's value (its default when never set).
fn opt(s: &Sock, level: u32, name: u32) -> i32 {
    s.opt(level, name)
        .or_else(|| {
            KEPT.iter()
                .find(|k| k.0 == level && k.1 == name)
                .map(|k| k.2)
        })
        .unwrap_or(0)
}

/// `socket(AF_INET|AF_INET6, ty, proto)` with the kind already checked by the caller.
pub fn new_socket(
    family: u16,
    kind: u64,
    proto: u64,
    cred: unix::Cred,
    k: &Kernel,
) -> Result<SockRef, Errno> {
    let (ty, proto) = match (kind, proto) {
        (1, 0) | (1, 6) => (SOCK_STREAM, inet::IPPROTO_TCP),
        (2, 0) | (2, 17) => (SOCK_DGRAM, inet::IPPROTO_UDP),
        (2, 136) => (SOCK_DGRAM, IPPROTO_UDPLITE),
        // Ping sockets: Linux's default `ping_group_range` allows nobody.
        (2, IPPROTO_ICMP) if family == AF_INET => return Err(EACCES),
        (2, IPPROTO_ICMPV6) if family == AF_INET6 => return Err(EACCES),
        // Raw sockets would reach past the loopback: refused as for a process without
        // CAP_NET_RAW.
        (3, _) => return Err(EPERM),
        (1 | 2, _) => return Err(EPROTONOSUPPORT),
        _ => return Err(ESOCKTNOSUPPORT),
    };
    let s = Sock::new(ty, cred, &k.unix.reaper);
    s.borrow_mut().family = family;
    s.borrow_mut().proto = proto;
    Ok(s)
}

/// A `sockaddr_in`/`sockaddr_in6` of `len` bytes at `addr` for a socket of `family`, as
/// an endpoint (`None`: `AF_UNSPEC`, where the caller gives it a meaning).
pub fn read_addr<P: Platform>(
    t: &mut Task<P>,
    family: u16,
    addr: u64,
    len: u64,
) -> Result<Option<Endpoint>, Errno> {
    let len = len & 0xffff_ffff;
    if len < 2 {
        return Err(EINVAL);
    }
    let mut raw = alloc::vec![0u8; (len as usize).min(SIN6_LEN)];
    t.mm.lock().copy_in(addr, &mut raw)?;
    let fam = u16::from_ne_bytes([raw[0], raw[1]]);
    if fam == 0 {
        return Ok(None);
    }
    let port = |r: &[u8]| u16::from_be_bytes([r[2], r[3]]);
    if family == AF_INET {
        if len < SIN_LEN {
            return Err(EINVAL);
        }
        if fam != AF_INET {
            return Err(EAFNOSUPPORT);
        }
        let ip = [raw[4], raw[5], raw[6], raw[7]];
        return Ok(Some(Endpoint::v4(ip, port(&raw))));
    }
    if len < SIN6_LEN_RFC2133 {
        return Err(EINVAL);
    }
    if fam != AF_INET6 {
        return Err(EAFNOSUPPORT);
    }
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&raw[8..24]);
    Ok(Some(Endpoint {
        ip,
        port: port(&raw),
    }))
}

/// The `sockaddr_in`/`sockaddr_in6` bytes of `e` for a socket of `family` (`None`: the
/// unspecified address, port 0).
pub fn sockaddr(family: u16, e: Option<Endpoint>) -> Vec<u8> {
    let e = e.unwrap_or(if family == AF_INET {
        Endpoint::v4([0; 4], 0)
    } else {
        Endpoint {
            ip: [0; 16],
            port: 0,
        }
    });
    let mut out = family.to_ne_bytes().to_vec();
    out.extend_from_slice(&e.port.to_be_bytes());
    if family == AF_INET {
        out.extend_from_slice(&e.ip[12..]);
        out.resize(SIN_LEN as usize, 0);
    } else {
        out.extend_from_slice(&[0; 4]); // sin6_flowinfo
        out.extend_from_slice(&e.ip);
        out.extend_from_slice(&[0; 4]); // sin6_scope_id
    }
    out
}

/// `bind` of an inet socket.
pub fn bind<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    s: &SockRef,
    addr: u64,
    len: u64,
) -> SysResult {
    let family = s.borrow().family;
    let at = match read_addr(t, family, addr, len)? {
        Some(e) => e,
        // AF_UNSPEC is taken by an IPv4 socket for INADDR_ANY only (Linux's compatibility
        // rule); an IPv6 socket refuses it.
        None if family == AF_INET => {
            if len & 0xffff_ffff < SIN_LEN {
                return Err(EINVAL);
            }
            let mut raw = [0u8; 8];
            t.mm.lock().copy_in(addr, &mut raw)?;
            if raw[4..8] != [0; 4] {
                return Err(EAFNOSUPPORT);
            }
            Endpoint::v4([0; 4], u16::from_be_bytes([raw[2], raw[3]]))
        }
        None => return Err(EAFNOSUPPORT),
    };
    if family == AF_INET6 && at.v4_mapped() && s.borrow().v6only {
        return Err(EINVAL);
    }
    if !(at.is_any() || at.is_loopback()) {
        return Err(EADDRNOTAVAIL);
    }
    if s.borrow().addr.is_some() {
        return Err(EINVAL);
    }
    k.ports.bind(s, at)?;
    Ok(0)
}

/// The wildcard address of a socket's family (what an unbound socket is given a port on).
fn any(s: &Sock) -> Endpoint {
    if s.family == AF_INET {
        Endpoint::v4([0; 4], 0)
    } else {
        Endpoint {
            ip: [0; 16],
            port: 0,
        }
    }
}

/// `listen` of an unbound inet socket first takes an ephemeral port, as Linux's does.
pub fn autobind(k: &mut Kernel, s: &SockRef) -> Result<(), Errno> {
    if s.borrow().addr.is_none() {
        let at = any(&s.borrow());
        k.ports.bind(s, at)?;
    }
    Ok(())
}

/// Where a connection or datagram to `to` from a socket of `s`'s kind goes on the loopback
/// (`0.0.0.0` and `::` mean this host, as on Linux); `ENETUNREACH` elsewhere.
fn destination(s: &Sock, mut to: Endpoint) -> Result<Endpoint, Errno> {
    if s.family == AF_INET6 && to.v4_mapped() && s.v6only {
        return Err(ENETUNREACH);
    }
    if to.is_any() {
        to.ip = to.loopback_of();
    }
    if !to.is_loopback() {
        return Err(ENETUNREACH);
    }
    Ok(to)
}

/// The local endpoint of traffic from `s` to `to`: an ephemeral port on the wildcard if `s`
/// has none, and the loopback source address where it is bound to a wildcard — kept as its
/// address when `connect`ing (`fix`), not for a datagram sent elsewhere (Linux's unconnected
/// UDP socket stays on the wildcard). Returns the socket's address before.
fn source(
    k: &mut Kernel,
    s: &SockRef,
    to: &Endpoint,
    fix: bool,
) -> Result<(Endpoint, Option<Vec<u8>>), Errno> {
    let before = s.borrow().addr.clone();
    let bound = inet::local(&s.borrow());
    let mut at = match bound {
        Some(e) => e,
        None => {
            let a = any(&s.borrow());
            k.ports.bind(s, a)?
        }
    };
    if at.is_any() {
        at.ip = to.loopback_of();
        if fix {
            s.borrow_mut().addr = Some(at.encode());
        }
    }
    Ok((at, before))
}

/// `connect` of an inet socket (`nonblock`: the descriptor's `O_NONBLOCK`).
pub fn connect<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    s: &SockRef,
    nonblock: bool,
    addr: u64,
    len: u64,
) -> SysResult {
    let (family, ty) = {
        let x = s.borrow();
        (x.family, x.ty)
    };
    let Some(to) = read_addr(t, family, addr, len)? else {
        // AF_UNSPEC: dissolve the association (a datagram socket forgets its peer; a
        // connection is aborted).
        let peer = s.borrow().peer.upgrade();
        if let Some(p) = peer.filter(|_| ty == SOCK_STREAM) {
            let mut p = p.borrow_mut();
            p.err = Some(crate::errno::ECONNRESET);
            p.rcv_shut = true;
            p.snd_shut = true;
            p.gen_in = crate::events::stamp();
            p.gen_out = p.gen_in;
        }
        let mut x = s.borrow_mut();
        x.state = State::Unconnected;
        x.peer = alloc::rc::Weak::new();
        x.peer_addr = None;
        crate::sched::note_progress();
        return Ok(0);
    };
    if ty == SOCK_DGRAM {
        let to = destination(&s.borrow(), to)?;
        source(k, s, &to, true)?;
        let mut x = s.borrow_mut();
        x.state = State::Connected;
        x.was_connected = true;
        x.peer_addr = Some(to.encode());
        return Ok(0);
    }
    // A non-blocking connect's outcome is reported to the next `connect`, as Linux's
    // SS_CONNECTING state does: 0 once established, else the error (or ECONNABORTED).
    if core::mem::take(&mut s.borrow_mut().connecting) {
        let mut x = s.borrow_mut();
        if x.state == State::Connected {
            return Ok(0);
        }
        // The refused socket is disconnected: it may connect again.
        x.rcv_shut = false;
        x.snd_shut = false;
        return Err(x.err.take().unwrap_or(crate::errno::ECONNABORTED));
    }
    let st = s.borrow().state;
    match st {
        State::Connected | State::Listening => return Err(EISCONN),
        State::Unconnected => {}
    }
    let to = destination(&s.borrow(), to)?;
    let (local, before) = source(k, s, &to, true)?;
    let Some(l) = k.ports.listener(&to) else {
        // Refused: the port goes back unless the app bound it (the RST of Linux's loopback
        // arrives before a non-blocking connect returns, so it reports `EINPROGRESS` and
        // leaves the error for `SO_ERROR`).
        s.borrow_mut().addr = before;
        if nonblock {
            // Closed by the reset, as Linux's `tcp_done` leaves it.
            let mut x = s.borrow_mut();
            x.err = Some(ECONNREFUSED);
            x.connecting = true;
            x.rcv_shut = true;
            x.snd_shut = true;
            x.gen_out = crate::events::stamp();
            drop(x);
            crate::sched::note_progress();
            return Err(EINPROGRESS);
        }
        return Err(ECONNREFUSED);
    };
    let timeo = s.borrow().sndtimeo;
    let cred = super::socket::cred(t);
    match unix::connect_stream(s, &l, cred) {
        Err(e) if e == EAGAIN => {
            // The listener's backlog is full: a blocking connect waits for room, as a SYN
            // is retried.
            s.borrow_mut().addr = before;
            return wait(k, t, nonblock, timeo);
        }
        r => r?,
    }
    t.request = None;
    super::socket::done(t, timeo);
    let embryo = s.borrow().peer.upgrade();
    if let Some(e) = embryo {
        {
            let mut x = e.borrow_mut();
            x.addr = Some(to.encode());
            x.peer_addr = Some(local.encode());
        }
        k.ports.list(&e, to.port);
    }
    s.borrow_mut().peer_addr = Some(to.encode());
    if nonblock {
        s.borrow_mut().connecting = true;
        return Err(EINPROGRESS);
    }
    Ok(0)
}

/// A UDP send: to `ctl.to` or the connected peer; what no socket takes (or a full queue) is
/// dropped, as UDP does.
pub fn send_dgram<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    s: &SockRef,
    iov: &[(u64, u64)],
    ctl: &Control,
) -> SysResult {
    if !ctl.fds.is_empty() || ctl.cred.is_some() {
        return Err(EINVAL);
    }
    let (family, proto) = {
        let x = s.borrow();
        (x.family, x.proto)
    };
    let to = match ctl.to {
        Some((addr, len)) if addr != 0 => {
            let to = read_addr(t, family, addr, len)?.ok_or(EAFNOSUPPORT)?;
            if to.port == 0 {
                return Err(EINVAL);
            }
            destination(&s.borrow(), to)?
        }
        _ => {
            let x = s.borrow();
            match inet::peer(&x) {
                Some(p) if x.state == State::Connected => p,
                _ => return Err(EDESTADDRREQ),
            }
        }
    };
    let total = iov
        .iter()
        .fold(0usize, |a, v| a.saturating_add(v.1 as usize));
    let max = if to.v4_mapped() { UDP4_MAX } else { UDP6_MAX };
    if total > max {
        return Err(EMSGSIZE);
    }
    let (from, _) = source(k, s, &to, false)?;
    // The header fields the datagram carries: from this send's control data, else the
    // socket's options.
    let ip = {
        let x = s.borrow();
        let (hops, tclass) = if family == AF_INET6 {
            (
                ctl.ip6
                    .0
                    .unwrap_or_else(|| opt(&x, IPPROTO_IPV6, IPV6_UNICAST_HOPS)),
                ctl.ip6
                    .1
                    .unwrap_or_else(|| opt(&x, IPPROTO_IPV6, IPV6_TCLASS)),
            )
        } else {
            (
                ctl.ip4.0.unwrap_or_else(|| opt(&x, IPPROTO_IP, IP_TTL)),
                ctl.ip4.1.unwrap_or_else(|| opt(&x, IPPROTO_IP, IP_TOS)),
            )
        };
        IpInfo {
            hops: if hops < 0 { 64 } else { hops },
            tclass: tclass.max(0),
            dst: to.ip,
        }
    };
    // Copied before the receiver is known: a bad buffer is EFAULT whoever listens.
    let data = super::socket::gather(t, iov, total)?;
    match k.ports.receiver(proto, &from, &to) {
        Some(r) => {
            let fits = {
                let x = r.borrow();
                !x.rcv_shut && x.rx_charge + total + unix::MSG_OVERHEAD <= x.rcvbuf
            };
            if fits {
                r.borrow_mut().push(Msg {
                    data,
                    off: 0,
                    fds: Vec::new(),
                    cred: super::socket::cred(t),
                    from: Some(from.encode()),
                    ip: Some(ip),
                });
            }
        }
        None => {
            // The port unreachable a connected socket is told about (Linux's ICMP error).
            let mut x = s.borrow_mut();
            if x.state == State::Connected {
                x.err = Some(ECONNREFUSED);
                drop(x);
                crate::sched::note_progress();
            }
        }
    }
    Ok(total as u64)
}

/// `getsockopt` at an IP, IPv6 or TCP level, or a kept `SOL_SOCKET` option; `None` when
/// the caller handles it.
pub fn getsockopt(s: &Sock, level: u32, name: u32) -> Option<Result<i32, Errno>> {
    match (level, name) {
        (1, 2) => return Some(Ok(s.reuseaddr as i32)),
        (1, 15) => return Some(Ok(s.reuseport as i32)),
        (1, 38) => return Some(Ok(i32::from(s.proto))),
        (IPPROTO_IPV6, IPV6_V6ONLY) if s.family == AF_INET6 => return Some(Ok(s.v6only as i32)),
        (IPPROTO_TCP, 2) if s.state == State::Connected => return Some(Ok(65483)),
        (IPPROTO_IPV6, IPV6_UNICAST_HOPS) | (IPPROTO_IP, IP_TTL) if applies(s, level) => {
            let v = opt(s, level, name);
            return Some(Ok(if v < 0 { 64 } else { v }));
        }
        _ => {}
    }
    let (_, _, def) = *KEPT
        .iter()
        .find(|&&(l, n, _)| l == level && n == name && applies(s, l))?;
    Some(Ok(s.opt(level, name).unwrap_or(def)))
}

/// `setsockopt` of an integer option (see [`getsockopt`]); `None` when the caller handles
/// it.
pub fn setsockopt(s: &mut Sock, level: u32, name: u32, v: i32) -> Option<Result<(), Errno>> {
    match (level, name) {
        (1, 2) => s.reuseaddr = v != 0,
        (1, 15) => s.reuseport = v != 0,
        (IPPROTO_IPV6, IPV6_V6ONLY) if s.family == AF_INET6 => {
            if s.addr.is_some() {
                return Some(Err(EINVAL));
            }
            s.v6only = v != 0;
        }
        _ => {
            KEPT.iter()
                .find(|&&(l, n, _)| l == level && n == name && applies(s, l))?;
            // Booleans read back as 0/1 where Linux normalizes them; hop limits and
            // classes are checked as Linux checks them (-1: the default).
            let v = match (level, name) {
                (1, 6 | 9 | 10) | (IPPROTO_TCP, 1 | 3) => (v != 0) as i32,
                (IPPROTO_IP, IP_PKTINFO | IP_RECVTTL | IP_RECVTOS | 11) => (v != 0) as i32,
                (IPPROTO_IPV6, IPV6_RECVPKTINFO | IPV6_RECVHOPLIMIT | IPV6_RECVTCLASS | 25) => {
                    (v != 0) as i32
                }
                (IPPROTO_IP, IP_TTL) if v != -1 && !(1..=255).contains(&v) => {
                    return Some(Err(EINVAL))
                }
                (IPPROTO_IPV6, IPV6_UNICAST_HOPS | IPV6_TCLASS | 18)
                    if !(-1..=255).contains(&v) =>
                {
                    return Some(Err(EINVAL))
                }
                (IPPROTO_IPV6, IPV6_TCLASS) => v.max(0),
                (IPPROTO_IP, IP_TOS) => v & 0xff,
                _ => v,
            };
            s.set_opt(level, name, v);
        }
    }
    Some(Ok(()))
}

/// The control messages a datagram's header gives a receiver that asked for them, in
/// Linux's order (level, type, data).
pub fn recv_cmsgs(s: &Sock, ip: &IpInfo) -> Vec<(u32, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let on = |level, name| opt(s, level, name) != 0;
    let int = |v: i32| v.to_ne_bytes().to_vec();
    let mapped = ip.dst[..12] == Endpoint::v4([0; 4], 0).ip[..12];
    if s.family == AF_INET6 && !mapped {
        if on(IPPROTO_IPV6, IPV6_RECVPKTINFO) {
            let mut d = ip.dst.to_vec();
            d.extend_from_slice(&LO_INDEX.to_ne_bytes());
            out.push((IPPROTO_IPV6, IPV6_PKTINFO, d));
        }
        if on(IPPROTO_IPV6, IPV6_RECVHOPLIMIT) {
            out.push((IPPROTO_IPV6, IPV6_HOPLIMIT, int(ip.hops)));
        }
        if on(IPPROTO_IPV6, IPV6_RECVTCLASS) {
            out.push((IPPROTO_IPV6, IPV6_TCLASS, int(ip.tclass)));
        }
        return out;
    }
    if on(IPPROTO_IP, IP_PKTINFO) {
        // struct in_pktinfo: the interface, the local address, the destination.
        let mut d = (LO_INDEX as i32).to_ne_bytes().to_vec();
        d.extend_from_slice(&ip.dst[12..]);
        d.extend_from_slice(&ip.dst[12..]);
        out.push((IPPROTO_IP, IP_PKTINFO, d));
    }
    if on(IPPROTO_IP, IP_RECVTTL) {
        out.push((IPPROTO_IP, IP_TTL, int(ip.hops)));
    }
    if on(IPPROTO_IP, IP_RECVTOS) {
        out.push((IPPROTO_IP, IP_TOS, alloc::vec![ip.tclass as u8]));
    }
    out
}

/// A send's IP-level control message (`IP_TTL`/`IP_TOS` at `IPPROTO_IP`,
/// `IPV6_HOPLIMIT`/`IPV6_TCLASS` at `IPPROTO_IPV6`, packet info accepted), checked as Linux
/// checks them: into `c4`/`c6` as (hops, class); -1 means the socket's own value.
pub fn send_cmsg(
    level: u32,
    ty: u32,
    data: &[u8],
    c4: &mut (Option<i32>, Option<i32>),
    c6: &mut (Option<i32>, Option<i32>),
) -> Result<(), Errno> {
    let int = || -> Result<i32, Errno> {
        let b: [u8; 4] = data.try_into().map_err(|_| EINVAL)?;
        Ok(i32::from_ne_bytes(b))
    };
    let keep = |v: i32| (v != -1).then_some(v);
    match (level, ty) {
        (IPPROTO_IP, IP_TTL) => {
            let v = int()?;
            if !(1..=255).contains(&v) {
                return Err(EINVAL);
            }
            c4.0 = Some(v);
        }
        (IPPROTO_IP, IP_TOS) => {
            let v = if data.len() == 1 {
                i32::from(data[0])
            } else {
                int()?
            };
            if !(0..=255).contains(&v) {
                return Err(EINVAL);
            }
            c4.1 = Some(v);
        }
        (IPPROTO_IP, IP_PKTINFO) if data.len() < 12 => return Err(EINVAL),
        (IPPROTO_IPV6, IPV6_HOPLIMIT) | (IPPROTO_IPV6, IPV6_TCLASS) => {
            let v = int()?;
            if !(-1..=255).contains(&v) {
                return Err(EINVAL);
            }
            if ty == IPV6_HOPLIMIT {
                c6.0 = keep(v);
            } else {
                c6.1 = keep(v);
            }
        }
        (IPPROTO_IPV6, IPV6_PKTINFO) if data.len() < 20 => return Err(EINVAL),
        _ => {}
    }
    Ok(())
}

/// Levels other than `SOL_SOCKET` an inet socket answers for: its protocol's, IP's and (an
/// IPv6 socket) IPv6's. Unknown names there are `ENOPROTOOPT`.
pub fn known_level(s: &Sock, level: u32) -> bool {
    match level {
        IPPROTO_IP => true,
        IPPROTO_TCP => s.ty == SOCK_STREAM,
        IPPROTO_UDP => s.proto == inet::IPPROTO_UDP,
        IPPROTO_UDPLITE_OPT => s.proto == IPPROTO_UDPLITE,
        IPPROTO_IPV6 => s.family == AF_INET6,
        _ => false,
    }
}

/// `getsockopt` at a level the socket does not know: IPv4's `ip_getsockopt` says
/// `EOPNOTSUPP`, IPv6's `ENOPROTOOPT` (setting is `ENOPROTOOPT` for both).
pub fn unknown_level_get(s: &Sock) -> Errno {
    if s.family == AF_INET6 {
        crate::errno::ENOPROTOOPT
    } else {
        crate::errno::EOPNOTSUPP
    }
}

/// Whether `s` is an inet socket.
pub fn is_inet(s: &Sock) -> bool {
    s.family == AF_INET || s.family == AF_INET6
}
