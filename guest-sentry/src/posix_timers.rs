//! POSIX per-process timers (`timer_create` and the calls on its timers): what a thread group
//! keeps of them ([`PosixTimers`], in [`crate::kernel::ThreadGroup::timers`]). The syscalls are
//! in `syscalls/time.rs`; the scheduler fires due timers at the top of its loop, as it fires
//! `ITIMER_REAL` alarms, and counts their deadlines in the earliest one it waits for.
//!
//! Deadlines are kept on CLOCK_MONOTONIC (an absolute time on another clock is converted when
//! the timer is set, as `clock_nanosleep` does). A timer that expires while the signal it sent
//! before is still pending sends no second one: the pending signal's overrun count grows
//! (Linux), and the count it has when it is taken is what `timer_getoverrun` says from then on.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// `sigev_notify`: send `sigev_signo` to the process.
pub const SIGEV_SIGNAL: i32 = 0;
/// `sigev_notify`: no notification (the timer is only read with `timer_gettime`).
pub const SIGEV_NONE: i32 = 1;
/// `sigev_notify`: the C library's thread notification; the kernel treats it as
/// [`SIGEV_SIGNAL`] (libcs turn it into [`SIGEV_THREAD_ID`] before the call).
pub const SIGEV_THREAD: i32 = 2;
/// `sigev_notify` bit: send the signal to the thread `sigev_notify_thread_id` of the process.
pub const SIGEV_THREAD_ID: i32 = 4;
/// `si_code` of a timer's signal.
pub const SI_TIMER: i32 = -2;
/// The largest overrun count reported (`DELAYTIMER_MAX`).
pub const DELAYTIMER_MAX: i32 = i32::MAX;
/// Timers a process may hold at most, whatever its `RLIMIT_SIGPENDING` says.
pub const MAX_TIMERS: u64 = 1 << 16;

/// Where a timer's expiry goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// `SIGEV_NONE`.
    None,
    /// `SIGEV_SIGNAL` (and `SIGEV_THREAD`): `signo` to the process.
    Process { signo: i32 },
    /// `SIGEV_SIGNAL | SIGEV_THREAD_ID`: `signo` to thread `tid` of the process.
    Thread { signo: i32, tid: u32 },
}

/// One timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PosixTimer {
    /// The clock it was created on (absolute times given to `timer_settime` are on it).
    pub clock: u64,
    pub notify: Notify,
    /// `sigev_value`: what the signal carries (`si_value`).
    pub value: u64,
    /// The next expiry (CLOCK_MONOTONIC ns); None: disarmed.
    pub at: Option<u64>,
    /// The reload interval (ns; 0: one-shot).
    pub interval: u64,
    /// The overrun count of the last signal taken (`timer_getoverrun`).
    pub overrun_last: i32,
}

impl PosixTimer {
    /// A disarmed timer.
    pub fn new(clock: u64, notify: Notify, value: u64) -> Self {
        PosixTimer {
            clock,
            notify,
            value,
            at: None,
            interval: 0,
            overrun_last: 0,
        }
    }

    /// What `timer_gettime` says at `now` (CLOCK_MONOTONIC ns): the time to the next expiry and
    /// the interval. A timer that signals and whose expiry has passed but not been served yet
    /// reports 1 ns, as Linux does; a `SIGEV_NONE` timer is read forward to its next expiry.
    pub fn remaining(&self, now: u64) -> (u64, u64) {
        let Some(at) = self.at else {
            return (0, 0);
        };
        if at > now {
            return (at - now, self.interval);
        }
        match (self.notify, self.interval) {
            (Notify::None, 0) => (0, 0),
            (Notify::None, iv) => {
                let periods = (now - at) / iv + 1;
                let next = at.saturating_add(periods.saturating_mul(iv));
                (next.saturating_sub(now).max(1), iv)
            }
            (_, iv) => (1, iv),
        }
    }
}

/// An expiry the scheduler is to send a signal for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub id: i32,
    pub notify: Notify,
    pub value: u64,
    /// Expirations since the last look (more than 1: periods the scheduler was late for,
    /// which count as overruns).
    pub count: u64,
}

/// A thread group's timers, by id (ids count up from 0 per process, as Linux hands them out).
#[derive(Clone, Debug, Default)]
pub struct PosixTimers {
    timers: BTreeMap<i32, PosixTimer>,
    next_id: i32,
    /// The earliest expiry of a timer that signals (kept with every change).
    earliest: Option<u64>,
}

impl PosixTimers {
    /// Adds `timer` unless `limit` timers exist: its id.
    pub fn create(&mut self, timer: PosixTimer, limit: u64) -> Option<i32> {
        if self.timers.len() as u64 >= limit.min(MAX_TIMERS) {
            return None;
        }
        let mut id = self.next_id;
        while self.timers.contains_key(&id) {
            id = id.checked_add(1).unwrap_or(0);
        }
        self.next_id = id.checked_add(1).unwrap_or(0);
        self.timers.insert(id, timer);
        self.recompute();
        Some(id)
    }

    /// The id the next [`Self::create`] hands out, if there is room.
    pub fn next_id(&self) -> i32 {
        let mut id = self.next_id;
        while self.timers.contains_key(&id) {
            id = id.checked_add(1).unwrap_or(0);
        }
        id
    }

    pub fn get(&self, id: i32) -> Option<&PosixTimer> {
        self.timers.get(&id)
    }

    /// Arms timer `id` for `at` (None: disarms it) with reload `interval`. False if there is no
    /// such timer.
    pub fn set(&mut self, id: i32, at: Option<u64>, interval: u64) -> bool {
        let Some(t) = self.timers.get_mut(&id) else {
            return false;
        };
        t.at = at;
        t.interval = if at.is_some() { interval } else { 0 };
        self.recompute();
        true
    }

    /// Deletes timer `id`; false if there is none.
    pub fn delete(&mut self, id: i32) -> bool {
        let found = self.timers.remove(&id).is_some();
        self.recompute();
        found
    }

    /// Deletes every timer (`execve`).
    pub fn clear(&mut self) {
        *self = PosixTimers::default();
    }

    pub fn len(&self) -> usize {
        self.timers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }

    /// The earliest expiry of a timer that sends a signal (CLOCK_MONOTONIC ns).
    #[inline]
    pub fn earliest(&self) -> Option<u64> {
        self.earliest
    }

    /// The timers due at `now` that send a signal: each is reloaded (past `now`) or disarmed.
    pub fn expire(&mut self, now: u64) -> Vec<Expiry> {
        let mut due = Vec::new();
        if self.earliest.is_none_or(|e| e > now) {
            return due;
        }
        for (&id, t) in self.timers.iter_mut() {
            let Some(at) = t.at.filter(|&at| at <= now && t.notify != Notify::None) else {
                continue;
            };
            let count = match (now - at).checked_div(t.interval) {
                Some(late) => {
                    let periods = late + 1;
                    t.at = Some(at.saturating_add(periods.saturating_mul(t.interval)));
                    periods
                }
                None => {
                    t.at = None;
                    1
                }
            };
            due.push(Expiry {
                id,
                notify: t.notify,
                value: t.value,
                count,
            });
        }
        self.recompute();
        due
    }

    /// Timer `id`'s signal was taken with `overrun` overruns (what `timer_getoverrun` says).
    pub fn taken(&mut self, id: i32, overrun: i32) {
        if let Some(t) = self.timers.get_mut(&id) {
            t.overrun_last = overrun;
        }
    }

    fn recompute(&mut self) {
        self.earliest = self
            .timers
            .values()
            .filter(|t| t.notify != Notify::None)
            .filter_map(|t| t.at)
            .min();
    }
}

/// `count` overruns added to `overrun`, capped at [`DELAYTIMER_MAX`].
pub fn add_overruns(overrun: i32, count: u64) -> i32 {
    let sum = i64::from(overrun).saturating_add(i64::try_from(count).unwrap_or(i64::MAX));
    i32::try_from(sum.min(i64::from(DELAYTIMER_MAX))).unwrap_or(DELAYTIMER_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: Notify = Notify::Process { signo: 14 };

    #[test]
    fn ids_count_up_from_zero_and_the_limit_holds() {
        let mut ts = PosixTimers::default();
        assert_eq!(ts.create(PosixTimer::new(1, SIG, 0), 2), Some(0));
        assert_eq!(ts.create(PosixTimer::new(1, SIG, 0), 2), Some(1));
        assert_eq!(ts.create(PosixTimer::new(1, SIG, 0), 2), None);
        assert!(ts.delete(0));
        assert!(!ts.delete(0));
        assert_eq!(ts.create(PosixTimer::new(1, SIG, 0), 2), Some(2));
        ts.clear();
        assert!(ts.is_empty());
        assert_eq!(ts.create(PosixTimer::new(1, SIG, 0), 2), Some(0));
    }

    #[test]
    fn expiry_reloads_and_counts_missed_periods() {
        let mut ts = PosixTimers::default();
        let id = ts.create(PosixTimer::new(1, SIG, 7), 10).unwrap();
        let none = ts.create(PosixTimer::new(1, Notify::None, 0), 10).unwrap();
        assert!(ts.set(none, Some(50), 0));
        assert_eq!(ts.earliest(), None, "SIGEV_NONE timers wake nobody");
        assert!(ts.set(id, Some(100), 10));
        assert_eq!(ts.earliest(), Some(100));
        assert!(ts.expire(99).is_empty());
        let e = ts.expire(100);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].id, e[0].value, e[0].count), (id, 7, 1));
        assert_eq!(ts.earliest(), Some(110));
        // Late by three periods: four expirations at once, the next one past now.
        let e = ts.expire(145);
        assert_eq!(e[0].count, 4);
        assert_eq!(ts.earliest(), Some(150));
        assert_eq!(ts.get(id).unwrap().remaining(145), (5, 10));
        // One-shot: disarmed once fired.
        assert!(ts.set(id, Some(200), 0));
        assert_eq!(ts.expire(300)[0].count, 1);
        assert_eq!(ts.earliest(), None);
        assert_eq!(ts.get(id).unwrap().remaining(300), (0, 0));
        // SIGEV_NONE read forward.
        assert!(ts.set(none, Some(100), 30));
        assert_eq!(ts.get(none).unwrap().remaining(145), (15, 30));
        assert_eq!(add_overruns(DELAYTIMER_MAX - 1, 5), DELAYTIMER_MAX);
        assert_eq!(add_overruns(3, 4), 7);
    }
}
