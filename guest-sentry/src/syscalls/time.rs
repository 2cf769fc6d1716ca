//! Clocks and randomness, served inside the Sentry (no host round trip on kvm: the clock is
//! the TSC calibrated at boot, randomness a ChaCha20 stream seeded by the host).

use crate::errno::{Errno, SysResult, EAGAIN, EFAULT, EINVAL, EOPNOTSUPP, EPERM};
use crate::host::Clock;
use crate::kernel::{Kernel, Task};
use crate::linux::{Itimerspec, Itimerval, Sigevent, Timespec, Timeval, Timezone};
use crate::platform::Platform;
use crate::posix_timers::{self, Notify, PosixTimer};

const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;
const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
const CLOCK_MONOTONIC_RAW: u64 = 4;
const CLOCK_REALTIME_COARSE: u64 = 5;
const CLOCK_MONOTONIC_COARSE: u64 = 6;
const CLOCK_BOOTTIME: u64 = 7;

fn now(k: &Kernel, clock: u64) -> Result<u64, Errno> {
    Ok(match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE => k.host.now(Clock::Realtime),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME => {
            k.host.now(Clock::Monotonic)
        }
        // CPU time: the sandbox has one thread, running whenever the sandbox runs.
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => {
            k.host.now(Clock::Monotonic).saturating_sub(k.start_ns)
        }
        _ => return Err(EINVAL),
    })
}

pub fn clock_gettime<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let ns = now(k, a[0])?;
    t.mm.lock().write_obj(a[1], &Timespec::from_ns_u64(ns))?;
    Ok(0)
}

pub fn clock_getres<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    now(k, a[0])?;
    let res = match a[0] {
        CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => 4_000_000,
        _ => 1,
    };
    if a[1] != 0 {
        t.mm.lock().write_obj(a[1], &Timespec::from_ns_u64(res))?;
    }
    Ok(0)
}

pub fn gettimeofday<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[0] != 0 {
        let ns = k.host.now(Clock::Realtime);
        t.mm.lock().write_obj(a[0], &Timeval::from_ns_u64(ns))?;
    }
    if a[1] != 0 {
        t.mm.lock().write_obj(a[1], &Timezone::default())?; // UTC
    }
    Ok(0)
}

pub fn time<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let secs = k.host.now(Clock::Realtime) / 1_000_000_000;
    if a[0] != 0 {
        t.mm.lock().write_obj(a[0], &secs)?;
    }
    Ok(secs)
}

pub fn getrandom<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const GRND_NONBLOCK: u64 = 1;
    const GRND_RANDOM: u64 = 2;
    const GRND_INSECURE: u64 = 4;
    let flags = a[2];
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(EINVAL);
    }
    let len = a[1].min(33_554_431);
    let mut chunk = [0u8; 256];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        k.random_bytes(&mut chunk[..n]);
        t.mm.lock().copy_out(a[0] + done, &chunk[..n])?;
        done += n as u64;
    }
    Ok(len)
}

/// Blocks the task until `deadline` on CLOCK_MONOTONIC (other tasks run meanwhile); `Ok(true)`
/// once it has passed. Clears the task's deadline when done.
pub fn wait_until<P: Platform>(k: &Kernel, t: &mut Task<P>, deadline: u64) -> bool {
    let deadline = *t.wake_at.get_or_insert(deadline);
    if k.host.now(Clock::Monotonic) >= deadline {
        t.wake_at = None;
        return true;
    }
    t.request = Some(crate::sched::Request::Block);
    false
}

/// `clock_nanosleep(clock, flags, request, remain)`; `nanosleep(request, remain)` arrives here
/// as a relative CLOCK_MONOTONIC sleep. The task blocks; the others run meanwhile.
pub fn clock_nanosleep<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const TIMER_ABSTIME: u64 = 1;
    let [clock, flags, req, _rem, ..] = a;
    let want = super::io::read_timespec(t, req, false)?.ok_or(EFAULT)?;
    let cur = now(k, clock)?;
    // Deadlines are kept on CLOCK_MONOTONIC; an absolute time on another clock is converted.
    let remaining = if flags & TIMER_ABSTIME != 0 {
        want.saturating_sub(cur)
    } else {
        want
    };
    let mono = k.host.now(Clock::Monotonic);
    wait_until(k, t, mono.saturating_add(remaining));
    Ok(0)
}

/// The remaining time and interval of the task's `ITIMER_REAL`.
fn itimer_now<P: Platform>(k: &Kernel, t: &Task<P>) -> (u64, u64) {
    let alarm = t.tg.get().alarm;
    match alarm {
        Some((at, interval)) => (
            at.saturating_sub(k.host.now(Clock::Monotonic)).max(1),
            interval,
        ),
        None => (0, 0),
    }
}

/// `alarm(seconds)`: returns the seconds left on the previous alarm (rounded up).
pub fn alarm<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (left, _) = itimer_now(k, t);
    let secs = a[0] as u32 as u64;
    t.tg.lock().alarm =
        (secs > 0).then(|| (k.host.now(Clock::Monotonic) + secs * 1_000_000_000, 0));
    Ok(left.div_ceil(1_000_000_000))
}

/// `getitimer(which, value)` for `ITIMER_REAL`.
pub fn getitimer<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[0] != 0 {
        return Err(EINVAL);
    }
    let (left, interval) = itimer_now(k, t);
    let value = Itimerval {
        it_interval: Timeval::from_ns_u64(interval),
        it_value: Timeval::from_ns_u64(left),
    };
    t.mm.lock().write_obj(a[1], &value)?;
    Ok(0)
}

/// `setitimer(which, new, old)` for `ITIMER_REAL` (virtual and profiling timers need CPU-time
/// accounting, not there yet).
pub fn setitimer<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[0] != 0 {
        return Err(EINVAL);
    }
    let new: Itimerval = if a[1] != 0 {
        t.mm.lock().read_obj(a[1])?
    } else {
        Itimerval::default()
    };
    let Itimerval {
        it_interval: Timeval {
            tv_sec: isec,
            tv_usec: iusec,
        },
        it_value: Timeval {
            tv_sec: vsec,
            tv_usec: vusec,
        },
    } = new;
    if [isec, vsec].iter().any(|s| *s < 0)
        || [iusec, vusec].iter().any(|u| !(0..1_000_000).contains(u))
    {
        return Err(EINVAL);
    }
    if a[2] != 0 {
        getitimer(k, t, [0, a[2], 0, 0, 0, 0])?;
    }
    let value = vsec as u64 * 1_000_000_000 + vusec as u64 * 1000;
    let interval = isec as u64 * 1_000_000_000 + iusec as u64 * 1000;
    t.tg.lock().alarm = (value > 0).then(|| (k.host.now(Clock::Monotonic) + value, interval));
    Ok(0)
}

/// `pause()`: waits until a signal is delivered (then fails with EINTR).
pub fn pause<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, _a: [u64; 6]) -> SysResult {
    t.request = Some(crate::sched::Request::Block);
    Ok(0)
}

// ------------------------------------------------------------------ POSIX timers

const CLOCK_REALTIME_ALARM: u64 = 8;
const CLOCK_BOOTTIME_ALARM: u64 = 9;
const TIMER_ABSTIME: u64 = 1;

/// A timer id argument (`timer_t` is an `int` to the kernel): the timer, or EINVAL.
fn timer_id<P: Platform>(t: &Task<P>, arg: u64) -> Result<(i32, PosixTimer), Errno> {
    let id = i32::try_from(arg).map_err(|_| EINVAL)?;
    let timer = t.tg.get().timers.get(id).copied();
    Ok((id, timer.ok_or(EINVAL)?))
}

/// `timer_create(clockid, sevp, timerid)`: a timer of the process on CLOCK_REALTIME,
/// CLOCK_MONOTONIC, CLOCK_BOOTTIME (boot time is monotonic time: no suspend in the sandbox) or
/// the CPU-time clocks — which, as `clock_gettime` has them, count the time since the sandbox
/// started (a CPU-time timer expires after that much elapsed time, running or not). The alarm
/// clocks need CAP_WAKE_ALARM, which the sandbox does not grant (EPERM); the raw and coarse
/// clocks have no timers (EOPNOTSUPP, as on Linux). Without `sevp`: SIGALRM to the process
/// with the timer id as its value. At most `RLIMIT_SIGPENDING` timers (EAGAIN).
pub fn timer_create<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let clock = a[0];
    let event: Option<Sigevent> = if a[1] != 0 {
        Some(t.mm.lock().read_obj(a[1])?)
    } else {
        None
    };
    let alarm_clock = match clock {
        CLOCK_REALTIME
        | CLOCK_MONOTONIC
        | CLOCK_BOOTTIME
        | CLOCK_PROCESS_CPUTIME_ID
        | CLOCK_THREAD_CPUTIME_ID => false,
        CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM => true,
        CLOCK_MONOTONIC_RAW | CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => {
            return Err(EOPNOTSUPP)
        }
        _ => return Err(EINVAL),
    };
    let (limit, id, count) = {
        let g = t.tg.get();
        (g.rlimits[11].cur, g.timers.next_id(), g.timers.len())
    };
    if count as u64 >= limit.min(posix_timers::MAX_TIMERS) {
        return Err(EAGAIN);
    }
    let (notify, value) = match event {
        None => (
            Notify::Process {
                signo: crate::signal::SIGALRM,
            },
            u64::from(id.unsigned_abs()),
        ),
        Some(ev) => (notify_of(k, t, &ev)?, ev.sigev_value),
    };
    if alarm_clock {
        return Err(EPERM);
    }
    t.mm.lock().write_obj(a[2], &id)?;
    let created =
        t.tg.lock()
            .timers
            .create(PosixTimer::new(clock, notify, value), limit);
    debug_assert_eq!(created, Some(id));
    Ok(0)
}

/// What a `sigevent` asks for (as Linux's `good_sigevent` checks it): a signal in 1..=64 for
/// `SIGEV_SIGNAL` (and `SIGEV_THREAD`), that and a thread of this process for
/// `SIGEV_SIGNAL | SIGEV_THREAD_ID`, nothing for `SIGEV_NONE`; anything else is EINVAL.
fn notify_of<P: Platform>(k: &Kernel, t: &Task<P>, ev: &Sigevent) -> Result<Notify, Errno> {
    let signo = ev.sigev_signo;
    let valid_signo = (1..=crate::signal::NSIG as i32).contains(&signo);
    match ev.sigev_notify {
        posix_timers::SIGEV_NONE => Ok(Notify::None),
        posix_timers::SIGEV_SIGNAL | posix_timers::SIGEV_THREAD if valid_signo => {
            Ok(Notify::Process { signo })
        }
        n if n == posix_timers::SIGEV_SIGNAL | posix_timers::SIGEV_THREAD_ID => {
            let tid = u32::try_from(ev.sigev_notify_thread_id).map_err(|_| EINVAL)?;
            if tid != t.tid {
                // Another thread: the scheduler's view says whether it is one of ours.
                let view = k.proc_view.as_ref().filter(|v| v.for_pid == t.pid);
                let view = view.ok_or(crate::fsimpl::procfs::NEED_VIEW)?;
                if !view
                    .tids
                    .get(&t.pid)
                    .is_some_and(|tids| tids.contains(&tid))
                {
                    return Err(EINVAL);
                }
            }
            if !valid_signo {
                return Err(EINVAL);
            }
            Ok(Notify::Thread { signo, tid })
        }
        _ => Err(EINVAL),
    }
}

/// Reads an `itimerspec` a timer is to be set to: (value, interval) in ns.
fn read_itimerspec<P: Platform>(t: &Task<P>, addr: u64) -> Result<(u64, u64), Errno> {
    let spec: Itimerspec = t.mm.lock().read_obj(addr)?;
    let ns = |ts: Timespec| -> Result<u64, Errno> {
        let sec = u64::try_from(ts.tv_sec).map_err(|_| EINVAL)?;
        let nsec = u64::try_from(ts.tv_nsec).map_err(|_| EINVAL)?;
        if nsec >= 1_000_000_000 {
            return Err(EINVAL);
        }
        Ok(sec.saturating_mul(1_000_000_000).saturating_add(nsec))
    };
    Ok((ns(spec.it_value)?, ns(spec.it_interval)?))
}

fn itimerspec(value: u64, interval: u64) -> Itimerspec {
    Itimerspec {
        it_interval: Timespec::from_ns_u64(interval),
        it_value: Timespec::from_ns_u64(value),
    }
}

/// `timer_settime(timerid, flags, new, old)`: arms the timer `new.it_value` from now (or at
/// that time of its clock with TIMER_ABSTIME; a time passed expires at once), reloading it
/// with `new.it_interval`; a zero value disarms it. `old` gets what `timer_gettime` said.
pub fn timer_settime<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[2] == 0 {
        return Err(EINVAL);
    }
    let (value, interval) = read_itimerspec(t, a[2])?;
    let (id, timer) = timer_id(t, a[0])?;
    let mono = k.host.now(Clock::Monotonic);
    let old = timer.remaining(mono);
    let at = if value == 0 {
        None
    } else if a[1] & TIMER_ABSTIME != 0 {
        let cur = now(k, timer.clock)?;
        Some(mono.saturating_add(value.saturating_sub(cur)))
    } else {
        Some(mono.saturating_add(value))
    };
    t.tg.lock().timers.set(id, at, interval);
    if a[3] != 0 {
        t.mm.lock().write_obj(a[3], &itimerspec(old.0, old.1))?;
    }
    Ok(0)
}

/// `timer_gettime(timerid, curr)`: the time to the next expiry and the interval.
pub fn timer_gettime<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (_, timer) = timer_id(t, a[0])?;
    let (value, interval) = timer.remaining(k.host.now(Clock::Monotonic));
    t.mm.lock().write_obj(a[1], &itimerspec(value, interval))?;
    Ok(0)
}

/// `timer_getoverrun(timerid)`: the overrun count of the timer's last signal taken.
pub fn timer_getoverrun<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (_, timer) = timer_id(t, a[0])?;
    Ok(u64::from(timer.overrun_last.unsigned_abs()))
}

/// `timer_delete(timerid)`. (A signal it sent that is still pending stays pending.)
pub fn timer_delete<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (id, _) = timer_id(t, a[0])?;
    t.tg.lock().timers.delete(id);
    Ok(0)
}
