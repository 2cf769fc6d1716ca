//! The sandbox's loopback network (`--network none`, the default, as `runsc --network=none`):
//! `AF_INET`/`AF_INET6` TCP and UDP sockets between the sandbox's own processes and threads
//! on 127.0.0.0/8 and ::1. Nothing leaves the Sentry: a destination elsewhere is
//! `ENETUNREACH`, a local address elsewhere `EADDRNOTAVAIL`.
//!
//! A TCP connection is a pair of the Sentry's stream sockets ([`super::unix::Sock`], the same
//! queues, wake-ups and limits as a Unix stream: bytes go from one end's write into the other
//! end's receive queue in one copy), a UDP socket a datagram socket whose queue drops what
//! does not fit, as UDP does. Why no TCP/IP stack (`smoltcp` was evaluated): on a loopback
//! inside one kernel nothing is lost, reordered or congested, so segments, acknowledgements,
//! windows and retransmission timers would cost copies and wake-ups without changing what an
//! app can observe; and smoltcp keeps no listen backlog (a listening socket *becomes* the
//! connection), no port table with Linux's `SO_REUSEADDR`/`SO_REUSEPORT`/`IPV6_V6ONLY`
//! binding rules and no socket-level semantics (`EPIPE`, `ECONNRESET`, shutdown, timeouts),
//! all of which the Sentry would have to build above it anyway. What this module keeps is
//! what Linux's loopback shows: the port table and its rules ([`Ports`]), ephemeral ports,
//! which socket a connection or a datagram reaches, and the addresses each side sees.
//!
//! Addresses are kept as [`Endpoint`]s: IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), so one
//! table serves both families and a dual-stack IPv6 socket meets IPv4 peers, as on Linux.

use alloc::collections::BTreeMap;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;

use super::unix::{Sock, SockRef, State, SOCK_STREAM};
use crate::errno::{Errno, EADDRINUSE, EADDRNOTAVAIL};

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Linux's default `net.ipv4.ip_local_port_range`.
pub const EPHEMERAL_LO: u16 = 32768;
pub const EPHEMERAL_HI: u16 = 60999;

/// An address and port; IPv4 addresses as IPv4-mapped IPv6 ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: [u8; 16],
    pub port: u16,
}

const MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

impl Endpoint {
    pub fn v4(ip: [u8; 4], port: u16) -> Self {
        let mut a = [0u8; 16];
        a[..12].copy_from_slice(&MAPPED);
        a[12..].copy_from_slice(&ip);
        Endpoint { ip: a, port }
    }

    pub fn v4_mapped(&self) -> bool {
        self.ip[..12] == MAPPED
    }

    /// `0.0.0.0` (as mapped) or `::`.
    pub fn is_any(&self) -> bool {
        self.ip == [0; 16] || (self.v4_mapped() && self.ip[12..] == [0; 4])
    }

    /// 127.0.0.0/8 or ::1.
    pub fn is_loopback(&self) -> bool {
        if self.v4_mapped() {
            self.ip[12] == 127
        } else {
            let mut one = [0u8; 16];
            one[15] = 1;
            self.ip == one
        }
    }

    /// The loopback address of this endpoint's kind (the source a connection from here
    /// takes, as Linux's loopback route says: `src 127.0.0.1`).
    pub fn loopback_of(&self) -> [u8; 16] {
        if self.v4_mapped() {
            Endpoint::v4([127, 0, 0, 1], 0).ip
        } else {
            let mut one = [0u8; 16];
            one[15] = 1;
            one
        }
    }

    /// The form kept in a socket's address fields ([`Sock::addr`], message senders).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = self.ip.to_vec();
        v.extend_from_slice(&self.port.to_be_bytes());
        v
    }

    pub fn decode(b: &[u8]) -> Option<Endpoint> {
        if b.len() != 18 {
            return None;
        }
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&b[..16]);
        Some(Endpoint {
            ip,
            port: u16::from_be_bytes([b[16], b[17]]),
        })
    }
}

/// An address as text, as `inet_ntop` writes it: dotted IPv4 for a 4-byte address, else
/// IPv6 with the longest run of zero groups (two or more) as `::`, and IPv4-mapped
/// addresses as `::ffff:a.b.c.d`.
pub fn ip_text(ip: &[u8]) -> alloc::string::String {
    use core::fmt::Write;
    let mut out = alloc::string::String::new();
    if ip.len() == 4 {
        let _ = write!(out, "{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
        return out;
    }
    if ip.len() != 16 {
        return out;
    }
    if ip[..12] == MAPPED {
        let _ = write!(out, "::ffff:{}", ip_text(&ip[12..]));
        return out;
    }
    let g: Vec<u16> = ip
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    // The longest run of zero groups (the first of equal ones), if two or more long.
    let (mut best, mut run) = ((0usize, 0usize), (0usize, 0usize));
    for (i, &v) in g.iter().enumerate() {
        if v == 0 {
            if run.1 == 0 {
                run.0 = i;
            }
            run.1 += 1;
            if run.1 > best.1 {
                best = run;
            }
        } else {
            run.1 = 0;
        }
    }
    let mut i = 0;
    while i < 8 {
        if best.1 >= 2 && i == best.0 {
            out.push_str("::");
            i += best.1;
            continue;
        }
        if !out.is_empty() && !out.ends_with(':') {
            out.push(':');
        }
        let _ = write!(out, "{:x}", g[i]);
        i += 1;
    }
    out
}

/// The endpoint a socket is bound to (`None`: unbound).
pub fn local(s: &Sock) -> Option<Endpoint> {
    s.addr.as_deref().and_then(Endpoint::decode)
}

pub fn peer(s: &Sock) -> Option<Endpoint> {
    s.peer_addr.as_deref().and_then(Endpoint::decode)
}

/// Whether a socket bound to `bound` (with `IPV6_V6ONLY` = `v6only`) takes traffic for the
/// address `to`.
fn covers(bound: &Endpoint, v6only: bool, to: &Endpoint) -> bool {
    if bound.ip == to.ip {
        return true;
    }
    if bound.is_any() {
        return if bound.v4_mapped() {
            to.v4_mapped()
        } else {
            !to.v4_mapped() || !v6only
        };
    }
    false
}

/// Whether two bindings on one port meet (Linux's `inet_bind_conflict` address test).
fn overlap(a: &Endpoint, av6only: bool, b: &Endpoint, bv6only: bool) -> bool {
    covers(a, av6only, b) || covers(b, bv6only, a)
}

/// How well a socket bound to `bound` matches a destination `to` (higher wins; as Linux
/// scores: an exact address before a wildcard).
fn score(bound: &Endpoint, to: &Endpoint) -> u8 {
    if bound.ip == to.ip {
        2
    } else {
        1
    }
}

/// The ports in use, per protocol: every socket with a local port (bound, given an
/// ephemeral port, or accepted on a listener's port) is listed under it. Entries of sockets
/// that are gone are pruned as the table is used.
#[derive(Default)]
pub struct Ports {
    /// Keyed by (protocol, port): TCP, UDP and UDP-Lite have a port space each.
    map: BTreeMap<(u16, u16), Vec<Weak<RefCell<Sock>>>>,
    /// Where the next ephemeral port search starts.
    next: u16,
    /// Netlink sockets' port ids (kept here: the sandbox's one table of socket ports).
    netlink: BTreeMap<u32, Weak<RefCell<Sock>>>,
}

pub const IPPROTO_TCP: u16 = 6;
pub const IPPROTO_UDP: u16 = 17;
pub const IPPROTO_UDPLITE: u16 = 136;

impl Ports {
    /// Whether a live netlink socket has port id `id`.
    pub fn netlink_taken(&mut self, id: u32) -> bool {
        self.netlink.retain(|_, w| w.strong_count() > 0);
        self.netlink.contains_key(&id)
    }

    /// A free netlink port id: `pid` if free, else the first free one from -4096 down
    /// (Linux's autobind).
    pub fn netlink_free(&mut self, pid: u32) -> u32 {
        if !self.netlink_taken(pid) {
            return pid;
        }
        let mut id = (-4096i32) as u32;
        while self.netlink.contains_key(&id) {
            id = id.wrapping_sub(1);
        }
        id
    }

    pub fn netlink_bind(&mut self, s: &SockRef, id: u32) {
        self.netlink.insert(id, Rc::downgrade(s));
    }

    /// The live sockets of protocol `proto` on `port`.
    fn on(&mut self, proto: u16, port: u16) -> Vec<SockRef> {
        let Some(list) = self.map.get_mut(&(proto, port)) else {
            return Vec::new();
        };
        list.retain(|w| w.strong_count() > 0);
        let live: Vec<SockRef> = list.iter().filter_map(Weak::upgrade).collect();
        if live.is_empty() {
            self.map.remove(&(proto, port));
        }
        live
    }

    /// Whether `s` may take `at` beside the other sockets already on its port.
    fn free_for(&mut self, s: &Sock, at: &Endpoint) -> bool {
        for o in self.on(s.proto, at.port) {
            if core::ptr::eq(o.as_ptr(), s) {
                continue;
            }
            let Ok(o) = o.try_borrow() else { continue };
            let Some(oe) = local(&o) else { continue };
            if !overlap(at, s.v6only, &oe, o.v6only) {
                continue;
            }
            let reuse =
                s.reuseaddr && o.reuseaddr && (s.ty != SOCK_STREAM || o.state != State::Listening);
            if !(reuse || s.reuseport && o.reuseport) {
                return false;
            }
        }
        true
    }

    /// Binds `s` at `at` (port 0: an ephemeral port). The caller checked the address.
    pub fn bind(&mut self, s: &SockRef, mut at: Endpoint) -> Result<Endpoint, Errno> {
        if at.port == 0 {
            at.port = self.ephemeral(&s.borrow(), &at)?;
        } else if !self.free_for(&s.borrow(), &at) {
            return Err(EADDRINUSE);
        }
        self.list(s, at.port);
        s.borrow_mut().addr = Some(at.encode());
        Ok(at)
    }

    /// `listen`: a listening socket shares its port only by `SO_REUSEPORT` (Linux checks
    /// the port again, so two `SO_REUSEADDR` sockets bound together cannot both listen).
    pub fn check_listen(&mut self, s: &SockRef) -> Result<(), Errno> {
        let x = s.borrow();
        let Some(at) = local(&x) else {
            return Ok(());
        };
        if self.free_for(&x, &at) {
            Ok(())
        } else {
            Err(EADDRINUSE)
        }
    }

    /// Lists `s` under `port` (an accepted socket shares its listener's port).
    pub fn list(&mut self, s: &SockRef, port: u16) {
        let proto = s.borrow().proto;
        self.map
            .entry((proto, port))
            .or_default()
            .push(Rc::downgrade(s));
    }

    fn ephemeral(&mut self, s: &Sock, at: &Endpoint) -> Result<u16, Errno> {
        let n = u32::from(EPHEMERAL_HI - EPHEMERAL_LO) + 1;
        for i in 0..n {
            let off = (u32::from(self.next) + i) % n;
            let port = EPHEMERAL_LO + off as u16;
            let cand = Endpoint { port, ..*at };
            // An ephemeral port is one nobody has at all (Linux shares one between
            // connections to different peers; the Sentry has ports enough).
            if self.on(s.proto, port).is_empty() && self.free_for(s, &cand) {
                self.next = ((off + 1) % n) as u16;
                return Ok(port);
            }
        }
        Err(EADDRNOTAVAIL)
    }

    /// Where an ephemeral port search starts (random per sandbox, as Linux's is per boot).
    pub fn seed(&mut self, r: u16) {
        self.next = r % (EPHEMERAL_HI - EPHEMERAL_LO + 1);
    }

    /// The listening TCP socket a connection to `to` reaches.
    pub fn listener(&mut self, to: &Endpoint) -> Option<SockRef> {
        self.best(IPPROTO_TCP, to, |s| s.state == State::Listening)
    }

    /// The UDP (or UDP-Lite: `proto`) socket a datagram from `from` to `to` reaches: a
    /// socket connected elsewhere takes none.
    pub fn receiver(&mut self, proto: u16, from: &Endpoint, to: &Endpoint) -> Option<SockRef> {
        self.best(proto, to, |s| {
            s.state != State::Connected || peer(s) == Some(*from)
        })
    }

    fn best(&mut self, proto: u16, to: &Endpoint, ok: impl Fn(&Sock) -> bool) -> Option<SockRef> {
        let mut best: Option<(u8, SockRef)> = None;
        for c in self.on(proto, to.port) {
            let sc = {
                let Ok(x) = c.try_borrow() else { continue };
                let Some(e) = local(&x) else { continue };
                if !ok(&x) || !covers(&e, x.v6only, to) {
                    continue;
                }
                score(&e, to) + u8::from(x.state == State::Connected)
            };
            if best.as_ref().is_none_or(|(b, _)| sc > *b) {
                best = Some((sc, c));
            }
        }
        best.map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::unix::{Cred, Reaper, SOCK_DGRAM};

    fn sock(ty: u32, family: u16) -> SockRef {
        let s = Sock::new(ty, Cred::default(), &Reaper::default());
        s.borrow_mut().family = family;
        s.borrow_mut().proto = if ty == SOCK_STREAM {
            IPPROTO_TCP
        } else {
            IPPROTO_UDP
        };
        s
    }

    fn any6(port: u16) -> Endpoint {
        Endpoint { ip: [0; 16], port }
    }

    #[test]
    fn addresses_read_as_inet_ntop_writes_them() {
        let ip6 = |s: [u16; 8]| {
            let mut b = [0u8; 16];
            for (i, v) in s.iter().enumerate() {
                b[2 * i..2 * i + 2].copy_from_slice(&v.to_be_bytes());
            }
            ip_text(&b)
        };
        assert_eq!(ip6([0; 8]), "::");
        assert_eq!(ip6([0, 0, 0, 0, 0, 0, 0, 1]), "::1");
        assert_eq!(ip6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]), "2001:db8::1:0:0:1");
        assert_eq!(ip6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), "fe80::");
        assert_eq!(ip6([1, 0, 2, 3, 4, 5, 6, 7]), "1:0:2:3:4:5:6:7");
        assert_eq!(
            ip_text(&Endpoint::v4([127, 0, 0, 1], 0).ip),
            "::ffff:127.0.0.1"
        );
        assert_eq!(ip_text(&[10, 1, 2, 3]), "10.1.2.3");
    }

    #[test]
    fn dual_stack_wildcards_meet_ipv4() {
        let mut p = Ports::default();
        let a = sock(SOCK_STREAM, AF_INET6);
        p.bind(&a, any6(8080)).unwrap();
        let b = sock(SOCK_STREAM, AF_INET);
        assert_eq!(
            p.bind(&b, Endpoint::v4([127, 0, 0, 1], 8080)),
            Err(EADDRINUSE)
        );
        // With IPV6_V6ONLY the IPv4 side is free.
        drop(a);
        let a = sock(SOCK_STREAM, AF_INET6);
        a.borrow_mut().v6only = true;
        p.bind(&a, any6(8080)).unwrap();
        p.bind(&b, Endpoint::v4([127, 0, 0, 1], 8080)).unwrap();
    }

    #[test]
    fn reuseaddr_never_shares_a_listening_port() {
        let mut p = Ports::default();
        let a = sock(SOCK_STREAM, AF_INET);
        a.borrow_mut().reuseaddr = true;
        p.bind(&a, Endpoint::v4([0; 4], 9000)).unwrap();
        let b = sock(SOCK_STREAM, AF_INET);
        b.borrow_mut().reuseaddr = true;
        p.bind(&b, Endpoint::v4([127, 0, 0, 1], 9000)).unwrap();
        drop(b);
        a.borrow_mut().state = State::Listening;
        let c = sock(SOCK_STREAM, AF_INET);
        c.borrow_mut().reuseaddr = true;
        assert_eq!(
            p.bind(&c, Endpoint::v4([127, 0, 0, 1], 9000)),
            Err(EADDRINUSE)
        );
        // The exact address is preferred over the wildcard for a connection.
        assert!(p.listener(&Endpoint::v4([127, 0, 0, 9], 9000)).is_some());
        assert!(p.listener(&Endpoint::v4([127, 0, 0, 9], 9001)).is_none());
    }

    #[test]
    fn ephemeral_ports_are_distinct_and_in_range() {
        let mut p = Ports::default();
        p.seed(60999 - 32768);
        let mut seen = Vec::new();
        let mut keep = Vec::new();
        for _ in 0..3 {
            let s = sock(SOCK_DGRAM, AF_INET);
            let e = p.bind(&s, Endpoint::v4([0; 4], 0)).unwrap();
            assert!((EPHEMERAL_LO..=EPHEMERAL_HI).contains(&e.port));
            assert!(!seen.contains(&e.port));
            seen.push(e.port);
            keep.push(s);
        }
        assert_eq!(
            seen[..2],
            [60999, 32768],
            "the search wraps around the range"
        );
    }

    #[test]
    fn a_connected_udp_socket_takes_only_its_peer() {
        let mut p = Ports::default();
        let a = sock(SOCK_DGRAM, AF_INET);
        let at = p.bind(&a, Endpoint::v4([127, 0, 0, 1], 0)).unwrap();
        let friend = Endpoint::v4([127, 0, 0, 1], 1234);
        {
            let mut x = a.borrow_mut();
            x.state = State::Connected;
            x.peer_addr = Some(friend.encode());
        }
        assert!(p.receiver(IPPROTO_UDP, &friend, &at).is_some());
        assert!(p
            .receiver(IPPROTO_UDP, &Endpoint::v4([127, 0, 0, 1], 999), &at)
            .is_none());
        assert!(
            p.receiver(IPPROTO_UDPLITE, &friend, &at).is_none(),
            "UDP-Lite has ports of its own"
        );
    }
}
