//! Readiness and the event files, all inside the Sentry (no host round trip on any platform):
//! what a descriptor is ready for ([`poll_file`], the one readiness function behind `poll`,
//! `select` and epoll), epoll instances, `eventfd` counters and `timerfd` timers. `signalfd`
//! is a mask over the reading task's pending signals ([`crate::file::File::SignalFd`]).
//!
//! Nothing calls back into an epoll when a file changes: readiness is computed when asked, and
//! each file keeps the [`stamp`] of its last wake-up of readers (`gen_in`) and of writers
//! (`gen_out`), which an edge-triggered watch compares with what it saw last (what Linux's
//! wake-up callbacks amount to) and which orders the ready list. A timer's expiry is computed from the clock when looked at; a
//! waiter's deadline includes the next expiry of the timers it watches ([`Ready::wake`]).

use alloc::collections::BTreeMap;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use linux_raw_sys::general as g;

use crate::file::{File, OpenFile};
use crate::host::Clock;
use crate::kernel::{Kernel, Task};
use crate::platform::Platform;

pub const EPOLLIN: u32 = g::EPOLLIN;
pub const EPOLLPRI: u32 = g::EPOLLPRI;
pub const EPOLLOUT: u32 = g::EPOLLOUT;
pub const EPOLLERR: u32 = g::EPOLLERR;
pub const EPOLLHUP: u32 = g::EPOLLHUP;
pub const EPOLLRDNORM: u32 = g::EPOLLRDNORM;
pub const EPOLLRDBAND: u32 = g::EPOLLRDBAND;
pub const EPOLLWRNORM: u32 = g::EPOLLWRNORM;
pub const EPOLLWRBAND: u32 = g::EPOLLWRBAND;
pub const EPOLLRDHUP: u32 = g::EPOLLRDHUP;
pub const EPOLLEXCLUSIVE: u32 = g::EPOLLEXCLUSIVE;
pub const EPOLLWAKEUP: u32 = g::EPOLLWAKEUP;
pub const EPOLLONESHOT: u32 = g::EPOLLONESHOT;
pub const EPOLLET: u32 = g::EPOLLET;

/// What files without a readiness of their own report (Linux's `DEFAULT_POLLMASK`).
pub const DEFAULT_POLLMASK: u32 = EPOLLIN | EPOLLOUT | EPOLLRDNORM | EPOLLWRNORM;
/// Readiness bits that wake a reader, and a writer.
const IN_BITS: u32 = EPOLLIN | EPOLLRDNORM | EPOLLRDBAND | EPOLLPRI | EPOLLRDHUP;
const OUT_BITS: u32 = EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;
/// Linux's `EP_MAX_NESTS`: how deep epolls may watch epolls.
pub const MAX_NESTS: u32 = 4;

/// What a file is ready for now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// `EPOLL*`/`POLL*` bits (the two share their values).
    pub mask: u32,
    /// The last wake-ups ([`stamp`]s): of readers, of writers.
    pub gen_in: u64,
    pub gen_out: u64,
    /// When (CLOCK_MONOTONIC ns) the readiness changes by itself next (a timer's expiry).
    pub wake: Option<u64>,
    /// Another process's state was asked for without a view of the others at hand (a pidfd):
    /// the syscall is to run again with one ([`crate::fsimpl::procfs::NEED_VIEW`]).
    pub needs_view: bool,
}

/// The earlier of two optional deadlines.
pub fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// What `of` is ready for, as task `t` sees it (a signalfd looks at `t`'s signals).
pub fn poll_file<P: Platform>(k: &Kernel, t: &Task<P>, of: &OpenFile, depth: u32) -> Ready {
    let plain = |mask| Ready {
        mask,
        ..Default::default()
    };
    match &of.file {
        File::Pipe(end) => {
            let p = end.pipe.borrow();
            let mut mask = 0;
            if !end.write {
                if !p.data.is_empty() {
                    mask |= EPOLLIN | EPOLLRDNORM;
                }
                if p.writers == 0 {
                    mask |= EPOLLHUP;
                }
            }
            if end.write {
                if p.data.len() < p.capacity {
                    mask |= EPOLLOUT | EPOLLWRNORM;
                }
                if p.readers == 0 {
                    mask |= EPOLLERR;
                }
            }
            Ready {
                mask,
                gen_in: p.gen_in,
                gen_out: p.gen_out,
                wake: None,
                needs_view: false,
            }
        }
        File::Pty(end) => {
            let (mask, gen_in, gen_out) = end.pty.borrow().poll(end.master);
            Ready {
                mask,
                gen_in,
                gen_out,
                wake: None,
                needs_view: false,
            }
        }
        File::Socket(s) => {
            let (mask, gen_in, gen_out) = crate::net::unix::poll(s);
            Ready {
                mask,
                gen_in,
                gen_out,
                wake: None,
                needs_view: false,
            }
        }
        File::EventFd(e) => {
            let e = e.borrow();
            let mut mask = 0;
            if e.count > 0 {
                mask |= EPOLLIN | EPOLLRDNORM;
            }
            if e.count < u64::MAX - 1 {
                mask |= EPOLLOUT | EPOLLWRNORM;
            }
            Ready {
                mask,
                gen_in: e.gen_in,
                gen_out: e.gen_out,
                wake: None,
                needs_view: false,
            }
        }
        File::TimerFd(tf) => {
            let mut tf = tf.borrow_mut();
            tf.update(k);
            Ready {
                mask: if tf.ticks > 0 {
                    EPOLLIN | EPOLLRDNORM
                } else {
                    0
                },
                gen_in: tf.gen,
                gen_out: 0,
                wake: tf.deadline(k),
                needs_view: false,
            }
        }
        File::SignalFd(mask) => {
            let posted = t.signals.posted.max(t.tg.get().pending.posted);
            Ready {
                mask: if crate::signal::pending_mask(t) & mask.get() != 0 {
                    EPOLLIN | EPOLLRDNORM
                } else {
                    0
                },
                gen_in: posted,
                gen_out: 0,
                wake: None,
                needs_view: false,
            }
        }
        File::PidFd(pid) => {
            // Readable once the process has exited (it is no longer among the live ones).
            let view = k.proc_view.as_ref().filter(|v| v.for_pid == t.pid);
            let exited = match view {
                _ if *pid == t.pid => false,
                Some(v) => !v.procs.contains_key(pid),
                None => {
                    return Ready {
                        needs_view: true,
                        ..Default::default()
                    }
                }
            };
            Ready {
                mask: if exited { EPOLLIN | EPOLLRDNORM } else { 0 },
                gen_in: exited as u64,
                ..Default::default()
            }
        }
        File::Epoll(ep) => {
            if depth > MAX_NESTS {
                return plain(0);
            }
            let ep = ep.borrow();
            let mut r = plain(0);
            for it in ep.items.values() {
                let Some(f) = it.file.upgrade() else { continue };
                let inner = poll_file(k, t, &f, depth + 1);
                // The inner set's last wake-up is the latest of its files'.
                r.gen_in = r.gen_in.max(inner.gen_in).max(inner.gen_out);
                r.wake = earliest(r.wake, inner.wake);
                r.needs_view |= inner.needs_view;
                if !it.disabled && it.would_report(&inner) {
                    r.mask = EPOLLIN | EPOLLRDNORM;
                }
            }
            r
        }
        // Host stdio (which the Sentry cannot watch), host and overlay files, devices and
        // `/proc` files are always ready.
        _ => plain(DEFAULT_POLLMASK),
    }
}

/// One watch of an epoll instance.
pub struct Item {
    pub file: Weak<OpenFile>,
    pub fd: i32,
    /// The events asked for (with EPOLLERR and EPOLLHUP) and the mode bits.
    pub events: u32,
    pub data: u64,
    /// Edge-triggered: a wake-up not reported yet.
    pub pending: bool,
    /// The file's wake-up counters when last looked at.
    pub seen: (u64, u64),
    /// Reported once with EPOLLONESHOT: silent until `EPOLL_CTL_MOD`.
    pub disabled: bool,
    /// Where the watch stands in the ready list (lower: reported first).
    pub order: u64,
}

impl Item {
    /// Whether the file had a wake-up that concerns this watch since `seen`.
    pub fn woken(&self, r: &Ready) -> bool {
        (r.gen_in != self.seen.0 && self.events & (IN_BITS | EPOLLHUP | EPOLLERR) != 0)
            || (r.gen_out != self.seen.1 && self.events & (OUT_BITS | EPOLLHUP | EPOLLERR) != 0)
    }

    /// Whether `epoll_wait` would report this watch given the file's readiness `r`.
    pub fn would_report(&self, r: &Ready) -> bool {
        r.mask & self.events != 0 && (self.events & EPOLLET == 0 || self.pending || self.woken(r))
    }
}

/// An epoll instance: its watches by (open file, descriptor), as Linux keys them.
#[derive(Default)]
pub struct Epoll {
    pub items: BTreeMap<(usize, i32), Item>,
}

/// Wake-up stamps, in the order the wake-ups happened (0: none yet).
static STAMP: AtomicU64 = AtomicU64::new(1);

/// A fresh wake-up stamp, later than every one before: what files record as their last
/// wake-up, and where a watch goes in the ready list (so events come out in the order their
/// files woke, as Linux's ready list has them).
pub fn stamp() -> u64 {
    STAMP.fetch_add(1, Ordering::Relaxed)
}

impl Epoll {
    /// Drops the watches of files closed since (closing a file's last descriptor removes it
    /// from every epoll set).
    pub fn prune(&mut self) {
        self.items.retain(|_, it| it.file.strong_count() > 0);
    }
}

/// The key of `of` in an epoll's set.
pub fn key(of: &Rc<OpenFile>, fd: i32) -> (usize, i32) {
    (Rc::as_ptr(of) as usize, fd)
}

/// Whether watching `target` from `ep` would close a loop or nest epolls too deeply.
pub fn would_loop(ep: &OpenFile, target: &OpenFile, depth: u32) -> bool {
    if core::ptr::eq(ep, target) || depth > MAX_NESTS {
        return true;
    }
    let File::Epoll(inner) = &target.file else {
        return false;
    };
    let inner = inner.borrow();
    inner.items.values().any(|it| {
        it.file
            .upgrade()
            .is_some_and(|f| would_loop(ep, &f, depth + 1))
    })
}

/// The watches of an epoll set and their files, in no particular order.
pub fn watched(ep: &Epoll) -> Vec<((usize, i32), Rc<OpenFile>)> {
    ep.items
        .iter()
        .filter_map(|(k, it)| it.file.upgrade().map(|f| (*k, f)))
        .collect()
}

/// An `eventfd` counter.
pub struct EventFd {
    pub count: u64,
    pub semaphore: bool,
    pub gen_in: u64,
    pub gen_out: u64,
}

/// A `timerfd`: the next expiry on its clock (absolute ns), the interval, and the expirations
/// not read yet.
pub struct TimerFd {
    pub realtime: bool,
    pub next: Option<u64>,
    pub interval: u64,
    pub ticks: u64,
    /// The last expiry seen (a [`stamp`]: the timer's wake-ups).
    pub gen: u64,
}

impl TimerFd {
    pub fn clock(&self) -> Clock {
        if self.realtime {
            Clock::Realtime
        } else {
            Clock::Monotonic
        }
    }

    /// Counts the expirations up to now.
    pub fn update(&mut self, k: &Kernel) {
        let Some(next) = self.next else { return };
        let now = k.host.now(self.clock());
        if now < next {
            return;
        }
        let n = (now - next).checked_div(self.interval).map_or(1, |k| k + 1);
        self.ticks = self.ticks.saturating_add(n);
        self.gen = stamp();
        self.next = (self.interval > 0).then(|| next.saturating_add(n * self.interval));
    }

    /// The next expiry on CLOCK_MONOTONIC.
    pub fn deadline(&self, k: &Kernel) -> Option<u64> {
        let next = self.next?;
        let mono = k.host.now(Clock::Monotonic);
        Some(match self.clock() {
            Clock::Monotonic => next,
            Clock::Realtime => {
                mono.saturating_add(next.saturating_sub(k.host.now(Clock::Realtime)))
            }
        })
    }

    /// Time to the next expiry (0: disarmed) and the interval.
    pub fn remaining(&self, k: &Kernel) -> (u64, u64) {
        match self.next {
            Some(n) => (
                n.saturating_sub(k.host.now(self.clock())).max(1),
                self.interval,
            ),
            None => (0, self.interval),
        }
    }
}
