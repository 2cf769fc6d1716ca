//! Unix domain sockets: the kernel objects (stream, datagram and seqpacket sockets, their
//! receive queues, listeners' backlogs, the Sentry-wide table of bound names). The syscalls
//! over them are in `syscalls::socket`; this module never looks at app memory.
//!
//! A connected socket holds its peer weakly: each end is owned by its open file (or, before
//! `accept`, by its listener's backlog), so closing the last reference drops the socket, which
//! tells its peer (EOF, `EPIPE`, `ECONNRESET` as Linux has them) and wakes blocked tasks
//! ([`crate::sched::note_progress`]).
//!
//! Memory an app can make the Sentry hold is bounded: a receive queue by the sender's
//! `SO_SNDBUF` (each message charged [`MSG_OVERHEAD`] bytes more than its data, so empty
//! messages count too) and by [`MAX_DGRAM_QLEN`] messages, a backlog by [`MAX_BACKLOG`],
//! descriptors in flight by [`SCM_MAX_FD`] per message and [`MAX_QUEUED_FDS`] per queue.
//! Descriptors in flight cannot form a cycle (which would keep sockets alive forever, as
//! Linux's garbage collector otherwise has to find): a socket that has descriptors queued
//! cannot itself be sent, and a socket in flight cannot be sent descriptors
//! (`ETOOMANYREFS`, the errno Linux uses for its own in-flight limit).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::errno::{
    Errno, EADDRINUSE, EAGAIN, ECONNREFUSED, ECONNRESET, EINVAL, EISCONN, EMSGSIZE, ENOENT, ENOSPC,
    ENOTCONN, EPERM, EPIPE, EPROTOTYPE, ETOOMANYREFS,
};
use crate::events::stamp;
use crate::file::{File, OpenFile};

pub type SockRef = Rc<RefCell<Sock>>;

/// Host files that were in flight in a queue that went away: their host handles are closed
/// by the syscall layer ([`Names::reap`]), which can reach the host (a drop cannot).
pub type Reaper = Rc<RefCell<Vec<Rc<OpenFile>>>>;

pub const AF_UNIX: u16 = 1;
pub const SOCK_STREAM: u32 = 1;
pub const SOCK_DGRAM: u32 = 2;
pub const SOCK_SEQPACKET: u32 = 5;

/// Linux's default `SO_SNDBUF`/`SO_RCVBUF` (`net.core.wmem_default`) and the most
/// `setsockopt` takes before doubling (`wmem_max`).
pub const DEFAULT_BUF: usize = 212_992;
pub const MAX_BUF: usize = 212_992;
/// Linux's `SOCK_MIN_SNDBUF` and `SOCK_MIN_RCVBUF` on x86-64.
pub const MIN_SNDBUF: usize = 4608;
pub const MIN_RCVBUF: usize = 2304;
/// What a queued message costs beyond its data (Linux charges an skb's truesize).
pub const MSG_OVERHEAD: usize = 256;
/// Linux's `net.unix.max_dgram_qlen` default.
pub const MAX_DGRAM_QLEN: usize = 512;
/// Pending connections a listener keeps (Linux allows `somaxconn`, 4096; the Sentry keeps
/// fewer, each one being a socket with buffers).
pub const MAX_BACKLOG: usize = 128;
/// Linux's `SCM_MAX_FD`: descriptors in one `SCM_RIGHTS` message.
pub const SCM_MAX_FD: usize = 253;
/// Descriptors one receive queue holds in flight.
pub const MAX_QUEUED_FDS: usize = 1024;
/// Bound names kept (path names stay after their socket closes, until unlinked).
pub const MAX_NAMES: usize = 4096;

/// Who sent a message, or who is at the other end (`SO_PEERCRED`, `SCM_CREDENTIALS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cred {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One message in a receive queue (for a stream socket, one write's worth of bytes).
pub struct Msg {
    pub data: Vec<u8>,
    /// Bytes of `data` already read (stream sockets read messages piecewise).
    pub off: usize,
    pub fds: Vec<Rc<OpenFile>>,
    pub cred: Cred,
    /// The sender's address (`sun_path` bytes), for `recvfrom`.
    pub from: Option<Vec<u8>>,
    /// A datagram's IP header fields (inet sockets' ancillary data).
    pub ip: Option<IpInfo>,
}

/// What an inet datagram's IP header said: its hop limit (IPv4 TTL), traffic class (IPv4
/// TOS) and destination, for `IP_RECVTTL`/`IP_RECVTOS`/`IP_PKTINFO` and their IPv6 kin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpInfo {
    pub hops: i32,
    pub tclass: i32,
    pub dst: [u8; 16],
}

impl Msg {
    fn charge(&self) -> usize {
        self.data.len() + MSG_OVERHEAD + self.fds.len() * 8
    }
    pub fn remaining(&self) -> &[u8] {
        &self.data[self.off..]
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        for f in &self.fds {
            if let File::Socket(s) = &f.file {
                let mut s = s.borrow_mut();
                s.inflight = s.inflight.saturating_sub(1);
            }
        }
    }
}

/// A socket's place in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Unconnected,
    Listening,
    Connected,
}

pub struct Sock {
    pub ty: u32,
    /// `AF_UNIX`, or `AF_INET`/`AF_INET6` for the loopback network's sockets
    /// ([`super::inet`]: their addresses are [`super::inet::Endpoint`]s).
    pub family: u16,
    /// The inet protocol (`IPPROTO_TCP`, `IPPROTO_UDP`, `IPPROTO_UDPLITE`); 0 for Unix.
    pub proto: u16,
    /// `SO_REUSEADDR`, `SO_REUSEPORT`, `IPV6_V6ONLY` (inet sockets' binding rules).
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub v6only: bool,
    /// Integer options the Sentry keeps and reports but does not act on (`TCP_NODELAY`,
    /// `SO_KEEPALIVE`, `IP_TOS`, ...): (level, name, value).
    pub opts: Vec<(u32, u32, i32)>,
    /// `SO_LINGER`: the seconds a close lingers, when on (on with 0: close resets the peer).
    pub linger: Option<i32>,
    /// An inet connect that answered `EINPROGRESS`; the next `connect` reports its outcome.
    pub connecting: bool,
    /// Inode number (`socket:[N]`, `st_ino`).
    pub ino: u64,
    /// The bound address as `sun_path` bytes (abstract names start with 0; paths without
    /// their NUL, as the app gave them).
    pub addr: Option<Vec<u8>>,
    pub state: State,
    pub peer: Weak<RefCell<Sock>>,
    /// The peer's address when connected (`getpeername`).
    pub peer_addr: Option<Vec<u8>>,
    /// The peer's credentials (`SO_PEERCRED`), taken at connect/listen time.
    pub peer_cred: Cred,
    /// The creator's (a listener's: the caller of `listen`'s) credentials.
    pub cred: Cred,
    pub rx: VecDeque<Msg>,
    /// What `rx` is charged (data plus [`MSG_OVERHEAD`] per message).
    pub rx_charge: usize,
    pub rx_fds: usize,
    pub backlog: VecDeque<SockRef>,
    pub max_backlog: usize,
    /// `RCV_SHUTDOWN` / `SEND_SHUTDOWN` of Linux's `sk_shutdown`.
    pub rcv_shut: bool,
    pub snd_shut: bool,
    /// A pending error (`SO_ERROR`; reported once).
    pub err: Option<Errno>,
    pub passcred: bool,
    pub sndbuf: usize,
    pub rcvbuf: usize,
    /// `SO_RCVTIMEO` / `SO_SNDTIMEO` in ns (`None`: wait forever).
    pub rcvtimeo: Option<u64>,
    pub sndtimeo: Option<u64>,
    /// The last wake-up of readers and of writers ([`crate::events::stamp`]).
    pub gen_in: u64,
    pub gen_out: u64,
    /// Messages in flight that hold this socket.
    pub inflight: u32,
    /// Not accepted yet: in the backlog of `listener`.
    pub embryo: bool,
    pub listener: Weak<RefCell<Sock>>,
    /// Has been connected (a stream write after the peer went is `EPIPE`, not `ENOTCONN`).
    pub was_connected: bool,
    reaper: Reaper,
}

static NEXT_INO: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(20000);

impl Sock {
    pub fn new(ty: u32, cred: Cred, reaper: &Reaper) -> SockRef {
        Rc::new(RefCell::new(Sock {
            ty,
            family: AF_UNIX,
            proto: 0,
            reuseaddr: false,
            reuseport: false,
            v6only: false,
            opts: Vec::new(),
            linger: None,
            connecting: false,
            ino: NEXT_INO.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
            addr: None,
            state: State::Unconnected,
            peer: Weak::new(),
            peer_addr: None,
            peer_cred: Cred {
                pid: 0,
                uid: u32::MAX,
                gid: u32::MAX,
            },
            cred,
            rx: VecDeque::new(),
            rx_charge: 0,
            rx_fds: 0,
            backlog: VecDeque::new(),
            max_backlog: 0,
            rcv_shut: false,
            snd_shut: false,
            err: None,
            passcred: false,
            sndbuf: DEFAULT_BUF,
            rcvbuf: DEFAULT_BUF,
            rcvtimeo: None,
            sndtimeo: None,
            gen_in: 0,
            gen_out: 0,
            inflight: 0,
            embryo: false,
            listener: Weak::new(),
            was_connected: false,
            reaper: reaper.clone(),
        }))
    }

    /// A kept integer option's value ([`Sock::opts`]), if it was set.
    pub fn opt(&self, level: u32, name: u32) -> Option<i32> {
        self.opts
            .iter()
            .find(|o| o.0 == level && o.1 == name)
            .map(|o| o.2)
    }

    /// Keeps integer option (`level`, `name`) as `v`.
    pub fn set_opt(&mut self, level: u32, name: u32, v: i32) {
        match self.opts.iter_mut().find(|o| o.0 == level && o.1 == name) {
            Some(o) => o.2 = v,
            None => self.opts.push((level, name, v)),
        }
    }

    /// What `FIONREAD` says: queued bytes (stream), the next message's size (others).
    pub fn readable_bytes(&self) -> usize {
        if self.ty == SOCK_STREAM {
            self.rx.iter().map(|m| m.remaining().len()).sum()
        } else {
            self.rx.front().map_or(0, |m| m.data.len())
        }
    }

    /// Connection-oriented (stream or seqpacket).
    pub fn connection(&self) -> bool {
        self.ty != SOCK_DGRAM
    }

    /// Whether descriptors are queued here (or, for a listener, at a pending connection).
    pub fn holds_fds(&self) -> bool {
        self.rx_fds > 0 || self.backlog.iter().any(|s| s.borrow().rx_fds > 0)
    }

    fn wake_all(&mut self) {
        self.gen_in = stamp();
        self.gen_out = self.gen_in;
    }

    /// Takes the first message off the queue (the caller drops it after every borrow ends).
    pub fn pop(&mut self) -> Option<Msg> {
        let m = self.rx.pop_front()?;
        self.rx_charge -= m.charge();
        self.rx_fds -= m.fds.len();
        self.after_consume();
        Some(m)
    }

    /// Consumes `n` bytes of the first message (stream), dropping it once read; returns
    /// the message if it was taken off.
    pub fn consume(&mut self, n: usize) -> Option<Msg> {
        let m = self.rx.front_mut()?;
        m.off += n;
        if m.off >= m.data.len() {
            return self.pop();
        }
        self.rx_charge -= n;
        m.data.drain(..m.off);
        m.off = 0;
        self.after_consume();
        None
    }

    fn after_consume(&mut self) {
        // The writer (our peer) waits for room in this queue.
        if let Some(p) = self.peer.upgrade() {
            if let Ok(mut p) = p.try_borrow_mut() {
                p.gen_out = stamp();
            }
        }
        crate::sched::note_progress();
    }

    /// Queues `m`, charging it; the caller checked the limits.
    pub fn push(&mut self, m: Msg) {
        self.rx_charge += m.charge();
        self.rx_fds += m.fds.len();
        self.rx.push_back(m);
        self.gen_in = stamp();
        crate::sched::note_progress();
    }

    /// Whether a message of `len` data bytes and `nfds` descriptors fits in this queue for
    /// a sender whose send buffer is `sndbuf`.
    pub fn room_for(&self, len: usize, nfds: usize, sndbuf: usize) -> bool {
        if self.rx.is_empty() {
            return true;
        }
        let charge = len + MSG_OVERHEAD + nfds * 8;
        self.rx_charge + charge <= sndbuf.max(self.rcvbuf)
            && (self.connection() || self.rx.len() < MAX_DGRAM_QLEN)
    }

    /// Bytes a stream writer may still queue here (0: wait).
    pub fn stream_room(&self, sndbuf: usize) -> usize {
        sndbuf.saturating_sub(self.rx_charge + MSG_OVERHEAD)
    }

    /// Linux's `unix_writable`: a quarter of the send buffer or less in use.
    pub fn writable_for(&self, sndbuf: usize) -> bool {
        self.rx_charge * 4 <= sndbuf
    }

    /// `shutdown(how)`: 0 SHUT_RD, 1 SHUT_WR, 2 SHUT_RDWR; the peer sees the other side.
    pub fn shutdown(&mut self, rd: bool, wr: bool) {
        self.rcv_shut |= rd;
        self.snd_shut |= wr;
        self.wake_all();
        if self.connection() {
            if let Some(p) = self.peer.upgrade() {
                let mut p = p.borrow_mut();
                p.snd_shut |= rd;
                p.rcv_shut |= wr;
                p.wake_all();
            }
        }
        crate::sched::note_progress();
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        crate::sched::note_progress();
        if let Some(p) = self.peer.upgrade() {
            if let Ok(mut p) = p.try_borrow_mut() {
                if self.connection() {
                    let reset = !self.rx.is_empty() || self.embryo || self.linger == Some(0);
                    p.rcv_shut = true;
                    // A TCP peer's plain close is a FIN: this end may still write (once:
                    // the closed end answers with a reset, see `syscalls::socket`).
                    if p.family == AF_UNIX || reset {
                        p.snd_shut = true;
                    }
                    if reset {
                        p.err = Some(ECONNRESET);
                    }
                }
                p.wake_all();
            }
        }
        // Messages (and the files in them) go after this body, when no borrow is held; host
        // files among them are left for the syscall layer to close on the host.
        if let Ok(mut r) = self.reaper.try_borrow_mut() {
            for m in &self.rx {
                r.extend(
                    m.fds
                        .iter()
                        .filter(|f| matches!(f.file, File::Host(_)))
                        .cloned(),
                );
            }
        }
    }
}

/// A new connected pair (`socketpair`).
pub fn pair(ty: u32, cred: Cred, reaper: &Reaper) -> (SockRef, SockRef) {
    let a = Sock::new(ty, cred, reaper);
    let b = Sock::new(ty, cred, reaper);
    for (x, y) in [(&a, &b), (&b, &a)] {
        let mut x = x.borrow_mut();
        x.state = State::Connected;
        x.was_connected = true;
        x.peer = Rc::downgrade(y);
        x.peer_cred = cred;
    }
    (a, b)
}

/// Where a name is bound.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Name {
    /// The bytes after the leading 0.
    Abstract(Vec<u8>),
    /// A normalized absolute path in the sandbox.
    Path(Vec<u8>),
}

pub struct Binding {
    pub sock: Weak<RefCell<Sock>>,
    /// `S_IFSOCK` and permission bits (paths).
    pub mode: u32,
    pub ino: u64,
    pub mtime_ns: i64,
}

/// The Sentry-wide table of bound names. An abstract name is free again once its socket is
/// gone; a path stays (a socket file) until unlinked, as on Linux.
#[derive(Default)]
pub struct Names {
    pub map: BTreeMap<Name, Binding>,
    /// The next autobind name tried.
    next_auto: u32,
    pub reaper: Reaper,
}

impl Names {
    /// Closes the host files left by queues that went away.
    pub fn reap(&self, host: &dyn crate::host::Host) {
        let files = core::mem::take(&mut *self.reaper.borrow_mut());
        for f in files {
            crate::file::release(host, f);
        }
    }

    fn prune(&mut self) {
        self.map
            .retain(|n, b| matches!(n, Name::Path(_)) || b.sock.strong_count() > 0);
    }

    /// Binds `s` to `name` (whose `sun_path` bytes are `addr`).
    pub fn bind(
        &mut self,
        s: &SockRef,
        name: Name,
        addr: Vec<u8>,
        mode: u32,
        now: i64,
    ) -> Result<(), Errno> {
        if s.borrow().addr.is_some() {
            return Err(EINVAL);
        }
        self.prune();
        if self.map.contains_key(&name) {
            return Err(EADDRINUSE);
        }
        if self.map.len() >= MAX_NAMES {
            return Err(ENOSPC);
        }
        let ino = s.borrow().ino;
        self.map.insert(
            name,
            Binding {
                sock: Rc::downgrade(s),
                mode,
                ino,
                mtime_ns: now,
            },
        );
        s.borrow_mut().addr = Some(addr);
        Ok(())
    }

    /// Binds `s` to a free abstract name of five hex digits, as Linux's autobind does.
    pub fn autobind(&mut self, s: &SockRef) -> Result<(), Errno> {
        if s.borrow().addr.is_some() {
            return Ok(());
        }
        self.prune();
        for _ in 0..0x100000 {
            let n = self.next_auto & 0xfffff;
            self.next_auto = self.next_auto.wrapping_add(1);
            let mut name = Vec::with_capacity(5);
            for shift in (0..5).rev() {
                name.push(b"0123456789abcdef"[((n >> (shift * 4)) & 0xf) as usize]);
            }
            let key = Name::Abstract(name.clone());
            if !self.map.contains_key(&key) {
                let mut addr = alloc::vec![0u8];
                addr.extend_from_slice(&name);
                return self.bind(s, key, addr, 0, 0);
            }
        }
        Err(ENOSPC)
    }

    /// The live socket bound at `name`: ENOENT for a path nobody bound (the caller checks
    /// whether the path exists otherwise), ECONNREFUSED for a name whose socket is gone.
    pub fn lookup(&self, name: &Name) -> Result<SockRef, Errno> {
        match self.map.get(name) {
            None if matches!(name, Name::Abstract(_)) => Err(ECONNREFUSED),
            None => Err(ENOENT),
            Some(b) => b.sock.upgrade().ok_or(ECONNREFUSED),
        }
    }

    /// The socket file at the normalized path `np`, if one is bound there.
    pub fn path(&self, np: &[u8]) -> Option<&Binding> {
        self.map.get(&Name::Path(np.to_vec()))
    }

    /// `unlink` of a socket file: whether there was one.
    pub fn unlink(&mut self, np: &[u8]) -> bool {
        self.map.remove(&Name::Path(np.to_vec())).is_some()
    }
}

/// `listen(backlog)`.
pub fn listen(s: &SockRef, backlog: i32, cred: Cred) -> Result<(), Errno> {
    let mut x = s.borrow_mut();
    if !x.connection() {
        return Err(crate::errno::EOPNOTSUPP);
    }
    match x.state {
        State::Connected => return Err(EINVAL),
        State::Unconnected if x.addr.is_none() => return Err(EINVAL),
        _ => {}
    }
    x.state = State::Listening;
    x.max_backlog = usize::try_from(backlog.max(0))
        .unwrap_or(0)
        .min(MAX_BACKLOG);
    x.cred = cred;
    x.gen_in = stamp();
    crate::sched::note_progress();
    Ok(())
}

/// Connects the stream/seqpacket socket `c` to the listener `l` (the caller bound `c` if
/// it asked for credentials). `EAGAIN`: the backlog is full (wait, or say so).
pub fn connect_stream(c: &SockRef, l: &SockRef, cred: Cred) -> Result<(), Errno> {
    if Rc::ptr_eq(c, l) {
        return Err(ECONNREFUSED);
    }
    // In Linux's order: the listener first, then this socket's own state.
    let (ty, laddr, lcred) = {
        let ls = l.borrow();
        if ls.ty != c.borrow().ty {
            return Err(EPROTOTYPE);
        }
        if ls.state != State::Listening || ls.rcv_shut {
            return Err(ECONNREFUSED);
        }
        if ls.backlog.len() > ls.max_backlog {
            return Err(EAGAIN);
        }
        (ls.ty, ls.addr.clone(), ls.cred)
    };
    match c.borrow().state {
        State::Connected => return Err(EISCONN),
        State::Listening => return Err(EINVAL),
        State::Unconnected => {}
    }
    let s = Sock::new(ty, lcred, &l.borrow().reaper);
    {
        let mut ss = s.borrow_mut();
        let mut cs = c.borrow_mut();
        ss.state = State::Connected;
        ss.was_connected = true;
        ss.addr = laddr.clone();
        ss.peer = Rc::downgrade(c);
        ss.peer_addr = cs.addr.clone();
        ss.peer_cred = cred;
        ss.embryo = true;
        ss.listener = Rc::downgrade(l);
        {
            let ls = l.borrow();
            ss.passcred = ls.passcred;
            ss.family = ls.family;
            ss.proto = ls.proto;
            ss.reuseaddr = ls.reuseaddr;
            ss.reuseport = ls.reuseport;
            ss.v6only = ls.v6only;
            ss.opts = ls.opts.clone();
        }
        cs.state = State::Connected;
        cs.was_connected = true;
        cs.peer = Rc::downgrade(&s);
        cs.peer_addr = laddr;
        cs.peer_cred = lcred;
        cs.gen_out = stamp();
    }
    let mut ls = l.borrow_mut();
    ls.backlog.push_back(s);
    ls.gen_in = stamp();
    crate::sched::note_progress();
    Ok(())
}

/// Takes the first pending connection of listener `l`; `EAGAIN` when none waits.
pub fn accept(l: &SockRef) -> Result<SockRef, Errno> {
    let s = {
        let mut ls = l.borrow_mut();
        if ls.state != State::Listening {
            return Err(EINVAL);
        }
        ls.backlog.pop_front().ok_or(EAGAIN)?
    };
    {
        let mut ss = s.borrow_mut();
        ss.embryo = false;
        ss.listener = Weak::new();
    }
    crate::sched::note_progress();
    Ok(s)
}

/// The checks before descriptors `fds` are sent to `to`'s queue (see the module's notes).
pub fn check_passing(to: &Sock, fds: &[Rc<OpenFile>]) -> Result<(), Errno> {
    if fds.is_empty() {
        return Ok(());
    }
    if fds.len() > SCM_MAX_FD {
        return Err(EINVAL);
    }
    let in_flight_listener = to.embryo
        && to
            .listener
            .upgrade()
            .is_some_and(|l| l.try_borrow().map_or(true, |l| l.inflight > 0));
    if to.inflight > 0 || in_flight_listener || to.rx_fds + fds.len() > MAX_QUEUED_FDS {
        return Err(ETOOMANYREFS);
    }
    for f in fds {
        if let File::Socket(s) = &f.file {
            // `to` itself may be among them (already borrowed by the caller: it has no
            // descriptors queued, or the check above refused).
            if let Ok(s) = s.try_borrow() {
                if s.holds_fds() {
                    return Err(ETOOMANYREFS);
                }
            }
        }
    }
    Ok(())
}

/// Marks the sockets among `fds` as in flight (the message that holds them undoes it).
pub fn mark_inflight(fds: &[Rc<OpenFile>]) {
    for f in fds {
        if let File::Socket(s) = &f.file {
            s.borrow_mut().inflight += 1;
        }
    }
}

/// Why a send cannot go on now.
#[derive(Debug, PartialEq, Eq)]
pub enum SendErr {
    /// Wait for room (or `EAGAIN`).
    Full,
    Err(Errno),
    /// `EPIPE`: raise SIGPIPE unless `MSG_NOSIGNAL`.
    Pipe,
}

impl From<Errno> for SendErr {
    fn from(e: Errno) -> Self {
        SendErr::Err(e)
    }
}

/// The socket a send from `s` goes to: `to` (a `sendto` address's socket) or the peer.
pub fn send_target(s: &Sock, to: Option<SockRef>) -> Result<SockRef, SendErr> {
    if s.snd_shut {
        return Err(SendErr::Pipe);
    }
    if s.connection() {
        if s.state != State::Connected {
            return Err(SendErr::Err(if to.is_some() {
                crate::errno::EOPNOTSUPP
            } else {
                ENOTCONN
            }));
        }
        let p = s.peer.upgrade().ok_or(SendErr::Pipe)?;
        if p.borrow().rcv_shut {
            return Err(SendErr::Pipe);
        }
        return Ok(p);
    }
    match to {
        Some(t) => Ok(t),
        None if s.state == State::Connected => s.peer.upgrade().ok_or(ECONNREFUSED.into()),
        None => Err(SendErr::Err(ENOTCONN)),
    }
}

/// Datagram checks at the receiver `to` for a sender `me`.
pub fn dgram_accepts(me: &SockRef, to: &Sock) -> Result<(), Errno> {
    if to.ty != SOCK_DGRAM {
        return Err(EPROTOTYPE);
    }
    if to.rcv_shut {
        return Err(EPIPE);
    }
    // A socket connected to another one takes datagrams from that one only.
    if to.state == State::Connected && !core::ptr::eq(to.peer.as_ptr(), Rc::as_ptr(me)) {
        return Err(EPERM);
    }
    Ok(())
}

/// The largest datagram or seqpacket message a sender with `sndbuf` may send.
pub fn check_msg_size(len: usize, sndbuf: usize) -> Result<(), Errno> {
    if len > sndbuf.saturating_sub(32) {
        return Err(EMSGSIZE);
    }
    Ok(())
}

/// Readiness of a socket (`POLL*` bits) and its wake-up stamps, for [`crate::events`].
pub fn poll(s: &RefCell<Sock>) -> (u32, u64, u64) {
    use crate::events::*;
    let x = s.borrow();
    let mut m = 0;
    if x.state == State::Listening {
        if !x.backlog.is_empty() {
            m |= EPOLLIN | EPOLLRDNORM;
        }
        return (m, x.gen_in, x.gen_out);
    }
    if !x.rx.is_empty() {
        m |= EPOLLIN | EPOLLRDNORM;
    }
    if x.err.is_some() {
        m |= EPOLLERR;
    }
    if x.rcv_shut {
        m |= EPOLLRDHUP | EPOLLIN | EPOLLRDNORM;
    }
    if x.rcv_shut && x.snd_shut {
        m |= EPOLLHUP;
    }
    if x.connection() && x.state == State::Unconnected {
        m |= EPOLLHUP;
    }
    let writable = match x.peer.upgrade() {
        Some(p) if x.state == State::Connected => p.try_borrow().map_or(true, |p| {
            p.writable_for(x.sndbuf) && (x.connection() || p.rx.len() < MAX_DGRAM_QLEN)
        }),
        _ => true,
    };
    if writable {
        m |= EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;
    }
    (m, x.gen_in, x.gen_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(data: &[u8], fds: Vec<Rc<OpenFile>>) -> Msg {
        Msg {
            data: data.to_vec(),
            off: 0,
            fds,
            cred: Cred::default(),
            from: None,
            ip: None,
        }
    }

    #[test]
    fn closing_a_stream_end_tells_the_peer() {
        let (a, b) = pair(SOCK_STREAM, Cred::default(), &Reaper::default());
        b.borrow_mut().push(msg(b"unread", Vec::new()));
        drop(b);
        let x = a.borrow();
        assert!(x.rcv_shut && x.snd_shut);
        assert_eq!(
            x.err,
            Some(ECONNRESET),
            "unread data at close resets the peer"
        );
    }

    #[test]
    fn stream_consume_keeps_the_charge_right() {
        let (a, _b) = pair(SOCK_STREAM, Cred::default(), &Reaper::default());
        a.borrow_mut().push(msg(b"hello", Vec::new()));
        assert_eq!(a.borrow().rx_charge, 5 + MSG_OVERHEAD);
        assert!(a.borrow_mut().consume(2).is_none());
        assert_eq!(a.borrow().rx[0].remaining(), b"llo");
        assert_eq!(a.borrow().rx_charge, 3 + MSG_OVERHEAD);
        assert!(a.borrow_mut().consume(3).is_some());
        assert_eq!(a.borrow().rx_charge, 0);
    }

    #[test]
    fn descriptors_in_flight_cannot_form_a_cycle() {
        let (a, b) = pair(SOCK_STREAM, Cred::default(), &Reaper::default());
        let fa = Rc::new(OpenFile::new(File::Socket(a.clone()), false));
        // `a` goes into `b`'s queue: allowed, and `b` now holds descriptors.
        check_passing(&b.borrow(), core::slice::from_ref(&fa)).unwrap();
        mark_inflight(core::slice::from_ref(&fa));
        b.borrow_mut().push(msg(b"x", alloc::vec![fa]));
        assert_eq!(a.borrow().inflight, 1);
        // `b` cannot be sent anywhere now, and `a` (in flight) cannot be sent descriptors.
        let fb = Rc::new(OpenFile::new(File::Socket(b.clone()), false));
        assert_eq!(
            check_passing(&a.borrow(), core::slice::from_ref(&fb)),
            Err(ETOOMANYREFS)
        );
        // Taking the message off ends the flight.
        let m = b.borrow_mut().pop();
        drop(m);
        assert_eq!(a.borrow().inflight, 0);
    }

    #[test]
    fn backlog_and_names() {
        let mut names = Names::default();
        let l = Sock::new(SOCK_STREAM, Cred::default(), &names.reaper);
        let key = Name::Abstract(b"srv".to_vec());
        names
            .bind(&l, key.clone(), b"\0srv".to_vec(), 0, 0)
            .unwrap();
        let other = Sock::new(SOCK_STREAM, Cred::default(), &names.reaper);
        assert_eq!(
            names.bind(&other, key.clone(), b"\0srv".to_vec(), 0, 0),
            Err(EADDRINUSE)
        );
        listen(&l, 0, Cred::default()).unwrap();
        let c1 = Sock::new(SOCK_STREAM, Cred::default(), &names.reaper);
        let c2 = Sock::new(SOCK_STREAM, Cred::default(), &names.reaper);
        connect_stream(&c1, &names.lookup(&key).unwrap(), Cred::default()).unwrap();
        assert_eq!(connect_stream(&c2, &l, Cred::default()), Err(EAGAIN));
        drop(l);
        assert_eq!(
            c1.borrow().err,
            Some(ECONNRESET),
            "a pending connection is reset"
        );
        assert_eq!(names.lookup(&key).err(), Some(ECONNREFUSED));
        names.autobind(&other).unwrap();
        assert_eq!(other.borrow().addr.as_deref(), Some(&b"\x0000000"[..]));
    }
}
