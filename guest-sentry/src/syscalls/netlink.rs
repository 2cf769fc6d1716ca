//! The `AF_NETLINK` side of the socket syscalls: `NETLINK_ROUTE` sockets whose requests
//! [`crate::net::netlink`] answers. A request is answered when it is sent: the replies go into
//! the socket's own receive queue, which the datagram paths of [`super::socket`] read.

use alloc::vec::Vec;

use crate::errno::{
    Errno, SysResult, EADDRINUSE, ECONNREFUSED, EINVAL, ENOBUFS, EPROTONOSUPPORT, ESOCKTNOSUPPORT,
};
use crate::kernel::{Kernel, Task};
use crate::net::netlink::{self, AF_NETLINK, NETLINK_ROUTE};
use crate::net::unix::{self, Msg, Sock, SockRef, SOCK_DGRAM};
use crate::platform::Platform;

/// `sizeof(struct sockaddr_nl)`.
const NL_LEN: usize = 12;
/// `SOL_NETLINK`'s options kept and reported (membership, packet info, ext ack, strict
/// checking, capped acks, listen-all-nsid, no-enobufs).
pub const SOL_NETLINK: u32 = 270;
const KEPT: &[u32] = &[1, 2, 3, 5, 8, 10, 11, 12];
/// The most a request may be (Linux's is the send buffer).
const MAX_REQUEST: usize = 1 << 16;

/// `socket(AF_NETLINK, kind, proto)`: `SOCK_RAW` or `SOCK_DGRAM` of `NETLINK_ROUTE`.
pub fn new_socket(kind: u64, proto: u64, cred: unix::Cred, k: &Kernel) -> Result<SockRef, Errno> {
    if kind != 2 && kind != 3 {
        return Err(ESOCKTNOSUPPORT);
    }
    if proto != u64::from(NETLINK_ROUTE) {
        return Err(EPROTONOSUPPORT);
    }
    let s = Sock::new(SOCK_DGRAM, cred, &k.unix.reaper);
    {
        let mut x = s.borrow_mut();
        x.family = AF_NETLINK;
        x.proto = NETLINK_ROUTE;
        // SO_TYPE reports the type asked for (raw), though the queue is a datagram one.
        x.set_opt(1, 3, kind as i32);
    }
    Ok(s)
}

pub fn is_netlink(s: &Sock) -> bool {
    s.family == AF_NETLINK
}

/// The port id a socket is bound to.
fn port_id(s: &Sock) -> Option<u32> {
    let a = s.addr.as_deref()?;
    Some(u32::from_ne_bytes(a.try_into().ok()?))
}

/// `struct sockaddr_nl` of port id `addr` (4 bytes; none: 0, the kernel).
pub fn sockaddr(addr: Option<&[u8]>) -> Vec<u8> {
    let pid = addr
        .and_then(|a| a.try_into().ok())
        .map_or(0, u32::from_ne_bytes);
    let mut out = AF_NETLINK.to_ne_bytes().to_vec();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&pid.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes()); // nl_groups
    out
}

/// Reads a `sockaddr_nl`: (port id, groups).
fn read_addr<P: Platform>(t: &mut Task<P>, addr: u64, len: u64) -> Result<(u32, u32), Errno> {
    if ((len & 0xffff_ffff) as usize) < NL_LEN {
        return Err(EINVAL);
    }
    let raw: [u8; NL_LEN] = t.mm.lock().read_obj(addr)?;
    if u16::from_ne_bytes([raw[0], raw[1]]) != AF_NETLINK {
        return Err(EINVAL);
    }
    let w = |i: usize| u32::from_ne_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
    Ok((w(4), w(8)))
}

/// Gives `s` port id `want` (0: the caller's pid if free, else a free negative one, as
/// Linux's autobind).
fn bind_id(k: &mut Kernel, s: &SockRef, want: u32, pid: u32) -> Result<(), Errno> {
    if port_id(&s.borrow()).is_some() {
        return if want == 0 || Some(want) == port_id(&s.borrow()) {
            Ok(())
        } else {
            Err(EINVAL)
        };
    }
    let id = if want != 0 {
        if k.ports.netlink_taken(want) {
            return Err(EADDRINUSE);
        }
        want
    } else {
        k.ports.netlink_free(pid)
    };
    k.ports.netlink_bind(s, id);
    s.borrow_mut().addr = Some(id.to_ne_bytes().to_vec());
    Ok(())
}

/// `bind` of a netlink socket (multicast groups are accepted: nothing is ever announced).
pub fn bind<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    s: &SockRef,
    addr: u64,
    len: u64,
) -> SysResult {
    let (id, _groups) = read_addr(t, addr, len)?;
    bind_id(k, s, id, t.pid)?;
    Ok(0)
}

/// `connect`: the default destination (only the kernel, port id 0, answers).
pub fn connect<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    s: &SockRef,
    addr: u64,
    len: u64,
) -> SysResult {
    let (id, _) = read_addr(t, addr, len)?;
    bind_id(k, s, 0, t.pid)?;
    s.borrow_mut().peer_addr = Some(id.to_ne_bytes().to_vec());
    Ok(0)
}

/// A send: the request is answered at once into the socket's own queue.
pub fn send<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    s: &SockRef,
    iov: &[(u64, u64)],
    to: Option<(u64, u64)>,
) -> SysResult {
    if let Some((addr, len)) = to.filter(|&(a, _)| a != 0) {
        let (id, _) = read_addr(t, addr, len)?;
        if id != 0 {
            // Other sockets' port ids: the sandbox's netlink has no user-to-user messages.
            return Err(ECONNREFUSED);
        }
    }
    let total = iov
        .iter()
        .fold(0usize, |a, v| a.saturating_add(v.1 as usize));
    if total > MAX_REQUEST {
        return Err(crate::errno::EMSGSIZE);
    }
    bind_id(k, s, 0, t.pid)?;
    let req = super::socket::gather(t, iov, total)?;
    let id = port_id(&s.borrow()).unwrap_or(0);
    for reply in netlink::route_request(&req, id) {
        let mut x = s.borrow_mut();
        if x.rx_charge + reply.len() + unix::MSG_OVERHEAD > x.rcvbuf {
            // Linux drops what does not fit and tells the reader (ENOBUFS).
            x.err = Some(ENOBUFS);
            continue;
        }
        x.push(Msg {
            data: reply,
            off: 0,
            fds: Vec::new(),
            cred: unix::Cred::default(),
            from: Some(0u32.to_ne_bytes().to_vec()),
            ip: None,
        });
    }
    Ok(total as u64)
}

/// `SOL_NETLINK` options: kept as set (booleans), reported back.
pub fn getsockopt(s: &Sock, name: u32) -> Option<i32> {
    KEPT.contains(&name)
        .then(|| s.opt(SOL_NETLINK, name).unwrap_or(0))
}

pub fn setsockopt(s: &mut Sock, name: u32, v: i32) -> bool {
    if !KEPT.contains(&name) {
        return false;
    }
    s.set_opt(SOL_NETLINK, name, (v != 0) as i32);
    true
}
