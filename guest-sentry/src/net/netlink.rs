//! `NETLINK_ROUTE`, as far as programs ask it about the sandbox's network: dumps of its
//! links (`RTM_GETLINK`: `lo`) and addresses (`RTM_GETADDR`: 127.0.0.1/8 and ::1/128), which
//! glibc's `getifaddrs`/`if_nameindex`, Go's `net.Interfaces` and `getaddrinfo(AI_ADDRCONFIG)`
//! read. Requests that would change the network are `EPERM`, others `EOPNOTSUPP`, each
//! answered as Linux answers (an `NLMSG_ERROR` message). The requests and replies are bytes:
//! this module never looks at app memory; the syscall layer moves them.

use alloc::vec::Vec;

pub const AF_NETLINK: u16 = 16;
pub const NETLINK_ROUTE: u16 = 0;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_MULTI: u16 = 2;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
/// `RTM_BASE`..`RTM_MAX`: the route family's message types.
const RTM_BASE: u16 = 16;
const RTM_MAX: u16 = 127;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const ARPHRD_LOOPBACK: u16 = 772;
/// IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP.
const LO_FLAGS: u32 = 0x1 | 0x8 | 0x40 | 0x10000;
const LO_INDEX: i32 = 1;
const IFA_F_PERMANENT: u8 = 0x80;
const RT_SCOPE_HOST: u8 = 254;

/// An `nlmsghdr`'s fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
}

impl Header {
    fn parse(b: &[u8]) -> Option<Header> {
        let w = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if b.len() < 16 {
            return None;
        }
        Some(Header {
            len: w(0),
            ty: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: w(8),
            pid: w(12),
        })
    }
}

/// One message: header (its length filled in) and payload, padded to 4 bytes.
fn message(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, pid: u32, payload: &[u8]) {
    let len = 16 + payload.len();
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&pid.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// An `rtattr` of type `ty`.
fn attr(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// `lo`'s `ifinfomsg` and attributes.
fn link() -> Vec<u8> {
    let mut p = Vec::new();
    p.push(0); // ifi_family: AF_UNSPEC
    p.push(0);
    p.extend_from_slice(&ARPHRD_LOOPBACK.to_ne_bytes());
    p.extend_from_slice(&LO_INDEX.to_ne_bytes());
    p.extend_from_slice(&LO_FLAGS.to_ne_bytes());
    p.extend_from_slice(&0u32.to_ne_bytes()); // ifi_change
    attr(&mut p, 3, b"lo\0"); // IFLA_IFNAME
    attr(&mut p, 1, &[0; 6]); // IFLA_ADDRESS
    attr(&mut p, 2, &[0; 6]); // IFLA_BROADCAST
    attr(&mut p, 4, &65536u32.to_ne_bytes()); // IFLA_MTU
    attr(&mut p, 13, &1000u32.to_ne_bytes()); // IFLA_TXQLEN
    attr(&mut p, 6, b"noqueue\0"); // IFLA_QDISC
    attr(&mut p, 16, &[0]); // IFLA_OPERSTATE: IF_OPER_UNKNOWN, as lo's is
    attr(&mut p, 17, &[0]); // IFLA_LINKMODE
    p
}

/// An address of `lo`: `ifaddrmsg` and attributes.
fn address(family: u8) -> Vec<u8> {
    let (prefix, ip): (u8, &[u8]) = if family == AF_INET {
        (8, &[127, 0, 0, 1])
    } else {
        (128, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    };
    let mut p = alloc::vec![family, prefix, IFA_F_PERMANENT, RT_SCOPE_HOST];
    p.extend_from_slice(&(LO_INDEX as u32).to_ne_bytes());
    attr(&mut p, 1, ip); // IFA_ADDRESS
    if family == AF_INET {
        attr(&mut p, 2, ip); // IFA_LOCAL
        attr(&mut p, 3, b"lo\0"); // IFA_LABEL
    }
    attr(&mut p, 8, &u32::from(IFA_F_PERMANENT).to_ne_bytes()); // IFA_FLAGS
    let mut ci = Vec::new();
    for v in [u32::MAX, u32::MAX, 0, 0] {
        ci.extend_from_slice(&v.to_ne_bytes()); // preferred, valid, cstamp, tstamp
    }
    attr(&mut p, 6, &ci); // IFA_CACHEINFO
    p
}

/// An `NLMSG_ERROR` for request `h` (`errno` 0: an acknowledgement).
fn error(out: &mut Vec<u8>, h: &Header, req: &[u8], errno: i32, pid: u32) {
    let mut p = (-errno).to_ne_bytes().to_vec();
    // The request's header (Linux copies the whole request for an error unless the socket
    // asked for capped acks; its header suffices for every reader seen).
    p.extend_from_slice(&req[..16]);
    message(out, NLMSG_ERROR, 0, h.seq, pid, &p);
}

/// The replies to the request bytes `req` sent by the socket with port id `pid`: each entry
/// one datagram, as Linux queues them (a dump's messages, then `NLMSG_DONE`). `Err`: the
/// bytes are not a request at all (too short), which Linux drops silently.
pub fn route_request(req: &[u8], pid: u32) -> Vec<Vec<u8>> {
    let mut replies = Vec::new();
    let mut off = 0;
    while let Some(h) = req.get(off..).and_then(Header::parse) {
        let len = h.len as usize;
        if len < 16 || off + len > req.len() {
            break;
        }
        let msg = &req[off..off + len];
        off += len.next_multiple_of(4);
        if h.flags & NLM_F_REQUEST == 0 || h.ty < RTM_BASE {
            continue;
        }
        let dump = h.flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        match h.ty {
            RTM_GETLINK if dump => {
                message(&mut out, RTM_NEWLINK, NLM_F_MULTI, h.seq, pid, &link());
            }
            RTM_GETLINK => {
                // One link by index (or, with index 0, by IFLA_IFNAME: only `lo` exists).
                let index = msg
                    .get(20..24)
                    .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                if index == LO_INDEX || index == 0 && msg.windows(3).any(|w| w == b"lo\0") {
                    message(&mut out, RTM_NEWLINK, 0, h.seq, pid, &link());
                } else {
                    error(&mut out, &h, msg, crate::errno::ENODEV.0, pid);
                }
            }
            RTM_GETADDR if dump => {
                let family = msg.get(16).copied().unwrap_or(0);
                for f in [AF_INET, AF_INET6] {
                    if family == 0 || family == f {
                        message(&mut out, RTM_NEWADDR, NLM_F_MULTI, h.seq, pid, &address(f));
                    }
                }
            }
            // Every other GET (routes, neighbours, rules, ...) has nothing to show here.
            t if t <= RTM_MAX && t % 4 == 2 && dump => {}
            // NEW*/DEL*/SET*: the sandbox's network cannot be changed from inside.
            t if t <= RTM_MAX && t % 4 != 2 => {
                error(&mut out, &h, msg, crate::errno::EPERM.0, pid);
                replies.push(out);
                continue;
            }
            _ => {
                error(&mut out, &h, msg, crate::errno::EOPNOTSUPP.0, pid);
                replies.push(out);
                continue;
            }
        }
        if dump {
            if !out.is_empty() {
                replies.push(out);
            }
            let mut done = Vec::new();
            message(
                &mut done,
                NLMSG_DONE,
                NLM_F_MULTI,
                h.seq,
                pid,
                &0i32.to_ne_bytes(),
            );
            replies.push(done);
        } else {
            if h.flags & NLM_F_ACK != 0 {
                error(&mut out, &h, msg, 0, pid);
            }
            replies.push(out);
        }
    }
    replies
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ty: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        message(&mut v, ty, flags, 7, 0, payload);
        v
    }

    #[test]
    fn a_link_dump_is_lo_then_done() {
        let r = route_request(
            &request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &[0; 16]),
            42,
        );
        assert_eq!(r.len(), 2);
        let h = Header::parse(&r[0]).unwrap();
        assert_eq!(
            (h.ty, h.flags, h.seq, h.pid),
            (RTM_NEWLINK, NLM_F_MULTI, 7, 42)
        );
        assert_eq!(h.len as usize, r[0].len());
        assert!(r[0].windows(3).any(|w| w == b"lo\0"));
        assert_eq!(Header::parse(&r[1]).unwrap().ty, NLMSG_DONE);
    }

    #[test]
    fn an_address_dump_filters_by_family() {
        let r = route_request(
            &request(
                RTM_GETADDR,
                NLM_F_REQUEST | NLM_F_DUMP,
                &[AF_INET6, 0, 0, 0, 0, 0, 0, 0],
            ),
            1,
        );
        let h = Header::parse(&r[0]).unwrap();
        assert_eq!(h.len as usize, r[0].len(), "one address only");
        assert_eq!(r[0][16], AF_INET6);
    }

    #[test]
    fn changes_are_refused_and_junk_is_dropped() {
        let r = route_request(&request(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK, &[0; 8]), 1);
        let h = Header::parse(&r[0]).unwrap();
        assert_eq!(h.ty, NLMSG_ERROR);
        assert_eq!(
            i32::from_ne_bytes(r[0][16..20].try_into().unwrap()),
            -crate::errno::EPERM.0
        );
        assert!(route_request(&[1, 2, 3], 1).is_empty());
        let mut bad = request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &[]);
        bad[0] = 200; // a length past the end
        assert!(route_request(&bad, 1).is_empty());
    }
}
