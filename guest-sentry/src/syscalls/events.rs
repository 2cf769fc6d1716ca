//! Readiness and event descriptors: `epoll_create1`/`epoll_ctl`/`epoll_wait`/`epoll_pwait`/
//! `epoll_pwait2`, `eventfd2`, `timerfd_create`/`settime`/`gettime` and `signalfd4`, and the
//! reads and writes of those descriptors. The objects and the readiness function that `poll`
//! and `select` share are in [`crate::events`]. Everything is served inside the Sentry.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use linux_raw_sys::general as g;
use zerocopy::IntoBytes;

use super::flags::{O_CLOEXEC, O_NONBLOCK};
use super::io::{alloc_fd, file, read_timespec};
use crate::errno::{Errno, SysResult, EAGAIN, EBADF, EEXIST, EINTR, EINVAL, ELOOP, ENOENT, EPERM};
use crate::events::{self as ev, earliest, poll_file, EventFd, Item, TimerFd};
use crate::file::{Dev, File, OpenFile};
use crate::host::Clock;
use crate::kernel::{Kernel, Task};
use crate::linux::{EpollEvent, Itimerspec, Siginfo, SignalfdSiginfo, Timespec};
use crate::platform::Platform;
use crate::signal;

/// A watch to report: its key, the events, the app's data.
type Report = ((usize, i32), u32, u64);

/// Linux's `EP_MAX_EVENTS`.
const EP_MAX_EVENTS: u64 = (i32::MAX as u64) / 12;

/// Installs a new event file at the lowest free descriptor.
fn new_fd<P: Platform>(t: &mut Task<P>, f: File, nonblock: bool, cloexec: bool) -> SysResult {
    let fd = alloc_fd(t, 0, Rc::new(OpenFile::new(f, nonblock)))?;
    if cloexec {
        t.files.lock().cloexec.insert(fd);
    } else {
        t.files.lock().cloexec.remove(&fd);
    }
    Ok(fd)
}

/// Blocks the task until something changes, the next expiry of a watched timer (`timer`), or
/// the end of `timeout_ns` (`None`: no end); `true` once the timeout has passed.
///
/// The deadline is kept in `t.wake_at` between retries; a timer's expiry may bring it forward.
/// (A retry that finds the deadline passed cannot tell a timer's expiry from the timeout's
/// end: should the timer's expiration have been taken by someone else meanwhile, the wait
/// ends early, with nothing ready, as a timeout.)
pub(super) fn block<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    timeout_ns: Option<u64>,
    timer: Option<u64>,
) -> bool {
    let now = k.host.now(Clock::Monotonic);
    match timeout_ns {
        Some(0) => {
            t.wake_at = None;
            return true;
        }
        Some(ns) => {
            let deadline = match t.wake_at {
                None => now.saturating_add(ns),
                Some(w) if now >= w => {
                    t.wake_at = None;
                    return true;
                }
                Some(w) => w,
            };
            t.wake_at = earliest(Some(deadline), timer);
        }
        None => t.wake_at = timer,
    }
    t.request = Some(crate::sched::Request::Block);
    false
}

/// A syscall's temporary signal mask (`epoll_pwait`, `ppoll`, `pselect6`): in force while it
/// waits; restored when it returns, or after the handler of the signal that interrupted it.
pub(super) fn set_temp_mask<P: Platform>(
    t: &mut Task<P>,
    addr: u64,
    size: u64,
) -> Result<(), Errno> {
    if addr == 0 {
        return Ok(());
    }
    if size != 8 {
        return Err(EINVAL);
    }
    let mask = t.mm.lock().read_u64(addr)?;
    if t.signals.saved_mask.is_none() {
        t.signals.saved_mask = Some(t.signals.blocked);
    }
    t.signals.blocked = mask & !signal::UNBLOCKABLE;
    Ok(())
}

/// Puts back the mask [`set_temp_mask`] replaced (the call returns without a signal).
pub(super) fn end_temp_mask<P: Platform>(t: &mut Task<P>, applied: bool) {
    if applied {
        if let Some(m) = t.signals.saved_mask.take() {
            t.signals.blocked = m;
        }
    }
}

// ------------------------------------------------------------------ epoll

pub fn epoll_create<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if (a[0] as i32) <= 0 {
        return Err(EINVAL);
    }
    new_fd(t, File::Epoll(RefCell::default()), false, false)
}

pub fn epoll_create1<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[0] & !O_CLOEXEC != 0 {
        return Err(EINVAL);
    }
    new_fd(
        t,
        File::Epoll(RefCell::default()),
        false,
        a[0] & O_CLOEXEC != 0,
    )
}

/// Whether epoll can watch `of`: not regular files, directories, or devices without a
/// readiness of their own (`/dev/null`, `/dev/zero`), as Linux refuses files without `poll`.
fn pollable(k: &Kernel, of: &OpenFile) -> bool {
    match &of.file {
        File::Host(_) | File::Mem { .. } | File::Synthetic { .. } => false,
        File::Dev(d) => *d == Dev::Urandom,
        File::Stdio(fd) => match k.host.fstat(*fd, true) {
            Ok(st) => {
                let fmt = st.mode & super::flags::S_IFMT;
                let null_or_zero = fmt == g::S_IFCHR && (st.rdev == 0x103 || st.rdev == 0x105);
                fmt != super::flags::S_IFREG && fmt != super::flags::S_IFDIR && !null_or_zero
            }
            Err(_) => true,
        },
        _ => true,
    }
}

/// `epoll_ctl(epfd, op, fd, event)`.
pub fn epoll_ctl<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const OK_WITH_EXCLUSIVE: u32 = ev::EPOLLIN
        | ev::EPOLLOUT
        | ev::EPOLLERR
        | ev::EPOLLHUP
        | ev::EPOLLWAKEUP
        | ev::EPOLLET
        | ev::EPOLLEXCLUSIVE;
    let (op, fd) = (a[1] as u32, a[2] as i32);
    let event = if op != g::EPOLL_CTL_DEL {
        Some(t.mm.lock().read_obj::<EpollEvent>(a[3])?)
    } else {
        None
    };
    let epf = file(t, a[0])?;
    let tf = file(t, a[2])?;
    if !pollable(k, &tf) {
        return Err(EPERM);
    }
    let File::Epoll(ep) = &epf.file else {
        return Err(EINVAL);
    };
    if Rc::ptr_eq(&epf, &tf) {
        return Err(EINVAL);
    }
    let (events, data) = event.map_or((0, 0), |e| (e.events, e.data));
    if events & ev::EPOLLEXCLUSIVE != 0
        && (op == g::EPOLL_CTL_MOD
            || (op == g::EPOLL_CTL_ADD
                && (matches!(tf.file, File::Epoll(_)) || events & !OK_WITH_EXCLUSIVE != 0)))
    {
        return Err(EINVAL);
    }
    let events = events | ev::EPOLLERR | ev::EPOLLHUP;
    let key = ev::key(&tf, fd);
    ep.borrow_mut().prune();
    match op {
        g::EPOLL_CTL_ADD => {
            if ep.borrow().items.contains_key(&key) {
                return Err(EEXIST);
            }
            if matches!(tf.file, File::Epoll(_)) && ev::would_loop(&epf, &tf, 1) {
                return Err(ELOOP);
            }
            let r = poll_file(k, t, &tf, 1);
            let order = ev::stamp();
            ep.borrow_mut().items.insert(
                key,
                Item {
                    file: Rc::downgrade(&tf),
                    fd,
                    events,
                    data,
                    pending: r.mask & events != 0,
                    seen: (r.gen_in, r.gen_out),
                    disabled: false,
                    order,
                },
            );
        }
        g::EPOLL_CTL_MOD => {
            let r = poll_file(k, t, &tf, 1);
            let order = ev::stamp();
            let mut ep = ep.borrow_mut();
            let it = ep.items.get_mut(&key).ok_or(ENOENT)?;
            if it.events & ev::EPOLLEXCLUSIVE != 0 {
                return Err(EINVAL);
            }
            it.events = events;
            it.data = data;
            it.disabled = false;
            it.seen = (r.gen_in, r.gen_out);
            if r.mask & events != 0 && !it.pending {
                it.pending = true;
                it.order = order;
            }
        }
        g::EPOLL_CTL_DEL => {
            ep.borrow_mut().items.remove(&key).ok_or(ENOENT)?;
        }
        _ => return Err(EINVAL),
    }
    crate::sched::note_progress();
    Ok(0)
}

/// The watches of `ep` ready to report (at most `max`, in ready-list order) as (key, events,
/// data), and the next expiry of a watched timer. Records the wake-ups it saw.
fn harvest<P: Platform>(
    k: &Kernel,
    t: &Task<P>,
    ep: &RefCell<ev::Epoll>,
    max: usize,
) -> Result<(Vec<Report>, Option<u64>), Errno> {
    ep.borrow_mut().prune();
    let watched = ev::watched(&ep.borrow());
    let readies: Vec<_> = watched
        .iter()
        .map(|(key, f)| (*key, poll_file(k, t, f, 1)))
        .collect();
    if readies.iter().any(|(_, r)| r.needs_view) {
        return Err(crate::fsimpl::procfs::NEED_VIEW);
    }
    let mut ep = ep.borrow_mut();
    let mut timer = None;
    let mut ready = Vec::new();
    for (key, r) in readies {
        let Some(it) = ep.items.get_mut(&key) else {
            continue;
        };
        let woken = it.woken(&r);
        it.seen = (r.gen_in, r.gen_out);
        if it.disabled {
            continue;
        }
        timer = earliest(timer, r.wake);
        if woken && !it.pending {
            // Onto the ready list as of the file's last wake-up.
            it.pending = true;
            it.order = r.gen_in.max(r.gen_out);
        }
        let revents = r.mask & it.events;
        if revents == 0 {
            it.pending = false;
            continue;
        }
        if it.events & ev::EPOLLET == 0 && !it.pending {
            // Level-triggered and ready: on the ready list whatever the wake-ups were.
            it.pending = true;
            it.order = ev::stamp();
        }
        if it.pending {
            ready.push((it.order, key, revents, it.data));
        }
    }
    ready.sort_unstable_by_key(|r| r.0);
    ready.truncate(max);
    Ok((
        ready.into_iter().map(|(_, k, e, d)| (k, e, d)).collect(),
        timer,
    ))
}

/// After the reported events reached the app: edge-triggered watches wait for the next
/// wake-up, one-shot ones for `EPOLL_CTL_MOD`, level-triggered ones go to the ready list's end.
fn commit(ep: &RefCell<ev::Epoll>, reported: &[Report]) {
    let mut ep = ep.borrow_mut();
    for (key, _, _) in reported {
        let Some(it) = ep.items.get_mut(key) else {
            continue;
        };
        if it.events & ev::EPOLLONESHOT != 0 {
            it.disabled = true;
            it.pending = false;
        } else if it.events & ev::EPOLLET != 0 {
            it.pending = false;
        } else {
            it.order = ev::stamp();
        }
    }
}

/// `epoll_wait`, `epoll_pwait` and `epoll_pwait2`: `timeout_ns` `None` waits for ever;
/// `sigmask`/`sigsetsize` as the app passed them (0: none).
fn epoll_wait_common<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    a: [u64; 6],
    timeout_ns: Option<u64>,
    sigmask: (u64, u64),
) -> SysResult {
    // The mask first, as Linux sets it: any failure but EINTR puts it back.
    set_temp_mask(t, sigmask.0, sigmask.1)?;
    let masked = sigmask.0 != 0;
    let r = epoll_wait_masked(k, t, a, timeout_ns, masked);
    if r.is_err() && r != Err(EINTR) {
        end_temp_mask(t, masked);
    }
    r
}

fn epoll_wait_masked<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    a: [u64; 6],
    timeout_ns: Option<u64>,
    masked: bool,
) -> SysResult {
    let (events_ptr, max) = (a[1], a[2] as i32);
    if max <= 0 || max as u64 > EP_MAX_EVENTS {
        return Err(EINVAL);
    }
    let end = events_ptr.checked_add(max as u64 * 12);
    if end.is_none_or(|e| e > crate::abi::USER_TOP) {
        return Err(crate::errno::EFAULT);
    }
    let of = file(t, a[0])?;
    let File::Epoll(ep) = &of.file else {
        return Err(EINVAL);
    };
    let (ready, timer) = harvest(k, t, ep, max as usize)?;
    if !ready.is_empty() {
        let out: Vec<EpollEvent> = ready
            .iter()
            .map(|&(_, events, data)| EpollEvent { events, data })
            .collect();
        t.wake_at = None;
        t.mm.lock().write_obj(events_ptr, out.as_slice())?;
        end_temp_mask(t, masked);
        commit(ep, &ready);
        return Ok(ready.len() as u64);
    }
    if signal::deliverable(t).is_some() {
        t.wake_at = None;
        return Err(EINTR);
    }
    if block(k, t, timeout_ns, timer) {
        end_temp_mask(t, masked);
    }
    Ok(0)
}

/// A millisecond timeout: negative waits for ever.
fn ms_timeout(ms: u64) -> Option<u64> {
    let ms = ms as i32;
    (ms >= 0).then(|| ms as u64 * 1_000_000)
}

pub fn epoll_wait<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    epoll_wait_common(k, t, a, ms_timeout(a[3]), (0, 0))
}

pub fn epoll_pwait<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    epoll_wait_common(k, t, a, ms_timeout(a[3]), (a[4], a[5]))
}

pub fn epoll_pwait2<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let timeout = read_timespec(t, a[3], false)?;
    epoll_wait_common(k, t, a, timeout, (a[4], a[5]))
}

// ------------------------------------------------------------------ eventfd

/// `eventfd2(initval, flags)`; `eventfd(initval)` arrives with flags 0.
pub fn eventfd2<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let semaphore = g::EFD_SEMAPHORE as u64;
    if a[1] & !(semaphore | O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(EINVAL);
    }
    let e = EventFd {
        count: a[0] & 0xffff_ffff,
        semaphore: a[1] & semaphore != 0,
        gen_in: 0,
        gen_out: 0,
    };
    new_fd(
        t,
        File::EventFd(RefCell::new(e)),
        a[1] & O_NONBLOCK != 0,
        a[1] & O_CLOEXEC != 0,
    )
}

/// Copies `bytes` out to the start of the app's `iov`.
fn copy_out_iov<P: Platform>(
    t: &mut Task<P>,
    iov: &[(u64, u64)],
    bytes: &[u8],
) -> Result<(), Errno> {
    let mut done = 0usize;
    for &(base, len) in iov {
        if done == bytes.len() {
            break;
        }
        let n = (len as usize).min(bytes.len() - done);
        t.mm.lock().copy_out(base, &bytes[done..done + n])?;
        done += n;
    }
    Ok(())
}

/// Copies the start of the app's `iov` into `out`.
fn copy_in_iov<P: Platform>(
    t: &mut Task<P>,
    iov: &[(u64, u64)],
    out: &mut [u8],
) -> Result<(), Errno> {
    let mut done = 0usize;
    for &(base, len) in iov {
        if done == out.len() {
            break;
        }
        let n = (len as usize).min(out.len() - done);
        t.mm.lock().copy_in(base, &mut out[done..done + n])?;
        done += n;
    }
    Ok(())
}

fn iov_len(iov: &[(u64, u64)]) -> u64 {
    iov.iter().fold(0u64, |s, v| s.saturating_add(v.1))
}

/// A read or write that must wait: EAGAIN for a non-blocking descriptor, else the task
/// blocks (until `timer`, a timer's expiry, at the latest) and the call is made again.
fn wait_or_eagain<P: Platform>(t: &mut Task<P>, of: &OpenFile, timer: Option<u64>) -> SysResult {
    if of.nonblock.get() {
        t.wake_at = None;
        return Err(EAGAIN);
    }
    t.wake_at = timer;
    t.request = Some(crate::sched::Request::Block);
    Ok(0)
}

pub(super) fn eventfd_rw<P: Platform>(
    t: &mut Task<P>,
    of: &OpenFile,
    e: &RefCell<EventFd>,
    iov: &[(u64, u64)],
    to_app: bool,
) -> SysResult {
    if iov_len(iov) < 8 {
        return Err(EINVAL);
    }
    if to_app {
        let (count, semaphore) = {
            let e = e.borrow();
            (e.count, e.semaphore)
        };
        if count == 0 {
            return wait_or_eagain(t, of, None);
        }
        let take = if semaphore { 1 } else { count };
        copy_out_iov(t, iov, &take.to_le_bytes())?;
        let mut e = e.borrow_mut();
        e.count -= take;
        e.gen_out = ev::stamp();
    } else {
        let mut b = [0u8; 8];
        copy_in_iov(t, iov, &mut b)?;
        let v = u64::from_le_bytes(b);
        if v == u64::MAX {
            return Err(EINVAL);
        }
        let count = e.borrow().count;
        if u64::MAX - count <= v {
            return wait_or_eagain(t, of, None);
        }
        let mut e = e.borrow_mut();
        e.count += v;
        e.gen_in = ev::stamp();
    }
    crate::sched::note_progress();
    Ok(8)
}

// ------------------------------------------------------------------ timerfd

const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;
const CLOCK_BOOTTIME: u64 = 7;
const CLOCK_REALTIME_ALARM: u64 = 8;
const CLOCK_BOOTTIME_ALARM: u64 = 9;

/// `timerfd_create(clockid, flags)`.
pub fn timerfd_create<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[1] & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(EINVAL);
    }
    let realtime = match a[0] {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM => true,
        // No suspend inside the sandbox: boot time is monotonic time.
        CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => false,
        _ => return Err(EINVAL),
    };
    let tf = TimerFd {
        realtime,
        next: None,
        interval: 0,
        ticks: 0,
        gen: 0,
    };
    new_fd(
        t,
        File::TimerFd(RefCell::new(tf)),
        a[1] & O_NONBLOCK != 0,
        a[1] & O_CLOEXEC != 0,
    )
}

fn timer_of<P: Platform>(t: &Task<P>, fd: u64) -> Result<Rc<OpenFile>, Errno> {
    let of = file(t, fd)?;
    if !matches!(of.file, File::TimerFd(_)) {
        return Err(EINVAL);
    }
    Ok(of)
}

fn valid_ns(ts: Timespec) -> Result<u64, Errno> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(EINVAL);
    }
    Ok((ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64))
}

fn current(k: &Kernel, tf: &mut TimerFd) -> Itimerspec {
    tf.update(k);
    let (value, interval) = tf.remaining(k);
    Itimerspec {
        it_interval: Timespec::from_ns_u64(interval),
        it_value: Timespec::from_ns_u64(value),
    }
}

/// `timerfd_settime(fd, flags, new, old)`.
pub fn timerfd_settime<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let abstime = g::TFD_TIMER_ABSTIME as u64;
    let cancel_on_set = g::TFD_TIMER_CANCEL_ON_SET as u64;
    let new: Itimerspec = t.mm.lock().read_obj(a[2])?;
    if a[1] & !(abstime | cancel_on_set) != 0 {
        return Err(EINVAL);
    }
    let value = valid_ns(new.it_value)?;
    let interval = valid_ns(new.it_interval)?;
    let of = timer_of(t, a[0])?;
    let File::TimerFd(tf) = &of.file else {
        return Err(EINVAL);
    };
    let old = {
        let mut tf = tf.borrow_mut();
        let old = current(k, &mut tf);
        tf.ticks = 0;
        tf.interval = interval;
        tf.next = if value == 0 {
            None
        } else if a[1] & abstime != 0 {
            Some(value)
        } else {
            Some(k.host.now(tf.clock()).saturating_add(value))
        };
        old
    };
    crate::sched::note_progress();
    if a[3] != 0 {
        t.mm.lock().write_obj(a[3], &old)?;
    }
    Ok(0)
}

/// `timerfd_gettime(fd, cur)`.
pub fn timerfd_gettime<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let of = timer_of(t, a[0])?;
    let File::TimerFd(tf) = &of.file else {
        return Err(EINVAL);
    };
    let cur = current(k, &mut tf.borrow_mut());
    t.mm.lock().write_obj(a[1], &cur)?;
    Ok(0)
}

/// A timerfd read: the expirations since the last read (blocks while there are none).
pub(super) fn timerfd_read<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    of: &OpenFile,
    tf: &RefCell<TimerFd>,
    iov: &[(u64, u64)],
) -> SysResult {
    if iov_len(iov) < 8 {
        return Err(EINVAL);
    }
    let (ticks, deadline) = {
        let mut tf = tf.borrow_mut();
        tf.update(k);
        (tf.ticks, tf.deadline(k))
    };
    if ticks == 0 {
        return wait_or_eagain(t, of, deadline);
    }
    t.wake_at = None;
    copy_out_iov(t, iov, &ticks.to_le_bytes())?;
    tf.borrow_mut().ticks = 0;
    Ok(8)
}

// ------------------------------------------------------------------ signalfd

/// `signalfd4(fd, mask, sizemask, flags)`; `signalfd` arrives with flags 0.
pub fn signalfd4<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[3] & !(O_CLOEXEC | O_NONBLOCK) != 0 || a[2] != 8 {
        return Err(EINVAL);
    }
    let mask = t.mm.lock().read_u64(a[1])? & !signal::UNBLOCKABLE;
    if a[0] as i32 == -1 {
        return new_fd(
            t,
            File::SignalFd(Cell::new(mask)),
            a[3] & O_NONBLOCK != 0,
            a[3] & O_CLOEXEC != 0,
        );
    }
    let of = file(t, a[0]).map_err(|_| EBADF)?;
    let File::SignalFd(m) = &of.file else {
        return Err(EINVAL);
    };
    m.set(mask);
    crate::sched::note_progress();
    Ok(a[0] & 0xffff_ffff)
}

/// A signalfd read: takes pending signals of the mask (lowest first), one
/// `signalfd_siginfo` each, as many as fit.
pub(super) fn signalfd_read<P: Platform>(
    t: &mut Task<P>,
    of: &OpenFile,
    mask: &Cell<u64>,
    iov: &[(u64, u64)],
) -> SysResult {
    const SIZE: usize = core::mem::size_of::<SignalfdSiginfo>();
    let room = (iov_len(iov) / SIZE as u64) as usize;
    if room == 0 {
        return Err(EINVAL);
    }
    let mut taken = signal::pending_mask(t) & mask.get();
    if taken == 0 {
        return wait_or_eagain(t, of, None);
    }
    let mut sigs = Vec::new();
    while taken != 0 && sigs.len() < room {
        let sig = taken.trailing_zeros() as i32 + 1;
        taken &= taken - 1;
        sigs.push(sig);
    }
    let mut bytes = Vec::with_capacity(sigs.len() * SIZE);
    for &sig in &sigs {
        let info = signal::peek_pending(t, sig);
        let si = SignalfdSiginfo {
            ssi_signo: sig as u32,
            ssi_errno: 0,
            ssi_code: info.code,
            ssi_pid: info.pid,
            ssi_uid: if info.code == signal::SI_USER || sig == signal::SIGCHLD {
                crate::kernel::SANDBOX_IDS[0]
            } else {
                0
            },
            ssi_fd: 0,
            ssi_tid: info.timerid as u32,
            ssi_band: 0,
            ssi_overrun: info.overrun as u32,
            ssi_trapno: 0,
            ssi_status: info.status,
            ssi_int: info.value as i32,
            ssi_ptr: info.value,
            ssi_utime: 0,
            ssi_stime: 0,
            ssi_addr: info.addr,
            ssi_addr_lsb: 0,
            _pad2: 0,
            ssi_syscall: 0,
            ssi_call_addr: 0,
            ssi_arch: 0,
            _pad: [0; 28],
        };
        bytes.extend_from_slice(si.as_bytes());
    }
    copy_out_iov(t, iov, &bytes)?;
    for &sig in &sigs {
        signal::take_pending(t, sig);
    }
    Ok(bytes.len() as u64)
}

/// `rt_sigtimedwait(set, info, timeout, sigsetsize)` (`sigwait`, `sigwaitinfo`,
/// `sigtimedwait`): takes a pending signal of `set` (lowest first), waiting for one until the
/// timeout (EAGAIN). The signals of `set` stay blocked while it waits, so that one arriving is
/// taken here rather than handled; another signal's handler interrupts it (EINTR).
pub fn rt_sigtimedwait<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[3] != 8 {
        return Err(EINVAL);
    }
    let set = t.mm.lock().read_u64(a[0])? & !signal::UNBLOCKABLE;
    let timeout = read_timespec(t, a[2], false)?;
    let ready = signal::pending_mask(t) & set;
    if ready != 0 {
        let sig = ready.trailing_zeros() as i32 + 1;
        let info = signal::peek_pending(t, sig);
        if a[1] != 0 {
            let si = signal::SigInfo { signo: sig, ..info }.to_linux();
            t.mm.lock().write_obj(a[1], &si)?;
        }
        signal::take_pending(t, sig);
        t.wake_at = None;
        end_temp_mask(t, true);
        return Ok(sig as u64);
    }
    if t.signals.saved_mask.is_none() {
        t.signals.saved_mask = Some(t.signals.blocked);
    }
    t.signals.blocked |= set;
    if signal::deliverable(t).is_some() {
        t.wake_at = None;
        return Err(EINTR);
    }
    if block(k, t, timeout, None) {
        end_temp_mask(t, true);
        return Err(EAGAIN);
    }
    Ok(0)
}

// ------------------------------------------------------------------ pidfd

/// Whether process `pid` is alive, from the scheduler's view of the other processes
/// ([`crate::fsimpl::procfs::NEED_VIEW`] when there is none at hand yet).
fn alive<P: Platform>(k: &Kernel, t: &Task<P>, pid: u32) -> Result<bool, Errno> {
    if pid == t.pid {
        return Ok(true);
    }
    let view = k.proc_view.as_ref().filter(|v| v.for_pid == t.pid);
    let view = view.ok_or(crate::fsimpl::procfs::NEED_VIEW)?;
    Ok(view.procs.contains_key(&pid))
}

/// `pidfd_open(pid, flags)`: a descriptor for a live process (close-on-exec, as Linux makes
/// it); readable once the process has exited.
pub fn pidfd_open<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    if a[1] & !O_NONBLOCK != 0 || pid <= 0 {
        return Err(EINVAL);
    }
    if !alive(k, t, pid as u32)? {
        return Err(crate::errno::ESRCH);
    }
    new_fd(t, File::PidFd(pid as u32), a[1] & O_NONBLOCK != 0, true)
}

/// The process a pidfd stands for.
pub(super) fn pidfd_pid<P: Platform>(t: &Task<P>, fd: u64) -> Result<u32, Errno> {
    let of = file(t, fd)?;
    match of.file {
        File::PidFd(pid) => Ok(pid),
        _ => Err(EBADF),
    }
}

/// `pidfd_send_signal(pidfd, sig, info, flags)`: `kill` of the pidfd's process (a `siginfo`
/// passed must name the same signal; what else it says is not delivered). Processes have one
/// thread: `PIDFD_SIGNAL_THREAD` and `PIDFD_SIGNAL_THREAD_GROUP` (Linux 6.9) mean the same;
/// `PIDFD_SIGNAL_PROCESS_GROUP` is not served (EINVAL).
pub fn pidfd_send_signal<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[3] & !3 != 0 || a[3] == 3 {
        return Err(EINVAL);
    }
    let pid = pidfd_pid(t, a[0])?;
    let sig = a[1] as i32;
    if !(0..=signal::NSIG as i32).contains(&sig) {
        return Err(EINVAL);
    }
    if a[2] != 0 {
        let si: Siginfo = t.mm.lock().read_obj(a[2])?;
        if si.si_signo != sig {
            return Err(EINVAL);
        }
    }
    t.request = Some(crate::sched::Request::Kill {
        pid: pid as i64,
        sig,
    });
    Ok(0)
}
