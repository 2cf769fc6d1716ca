//! `futex`: waits on wait queues ([`crate::futex`]) keyed by where the word lives, wakes,
//! requeues, `WAKE_OP`, and priority-inheritance locks (`LOCK_PI`, `UNLOCK_PI`,
//! `TRYLOCK_PI`) whose ownership passes from the unlocking thread straight to the oldest
//! waiter. (The Sentry runs one task at a time, so "priority inheritance" has no priorities
//! to lend: what PI mutexes need of the kernel is the lock-word protocol and the hand-over.)

use crate::errno::{SysResult, EAGAIN, EDEADLK, EFAULT, EINVAL, ENOSYS, EPERM, ETIMEDOUT};
use crate::futex::{key_for, Key, FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS};
use crate::host::Clock;
use crate::kernel::{Kernel, Task};
use crate::platform::Platform;
use crate::sched::Request;

const WAIT: u64 = 0;
const WAKE: u64 = 1;
const REQUEUE: u64 = 3;
const CMP_REQUEUE: u64 = 4;
const WAKE_OP: u64 = 5;
const LOCK_PI: u64 = 6;
const UNLOCK_PI: u64 = 7;
const TRYLOCK_PI: u64 = 8;
const WAIT_BITSET: u64 = 9;
const WAKE_BITSET: u64 = 10;
const LOCK_PI2: u64 = 13;
const PRIVATE: u64 = 128;
const CLOCK_REALTIME: u64 = 256;

/// `futex(uaddr, op, val, timeout, uaddr2, val3)`.
pub fn futex<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [uaddr, op, val, timeout, uaddr2, val3] = a;
    let private = op & PRIVATE != 0;
    let cmd = op & !(PRIVATE | CLOCK_REALTIME);
    if op & CLOCK_REALTIME != 0 && !matches!(cmd, WAIT | WAIT_BITSET | LOCK_PI2) {
        return Err(ENOSYS);
    }
    // A private wake with nobody waiting anywhere wakes no one: Linux does not look at the
    // address either (beyond its alignment).
    if private && matches!(cmd, WAKE | WAKE_BITSET) && !k.futex.any_waiting() {
        if !uaddr.is_multiple_of(4) || (cmd == WAKE_BITSET && val3 as u32 == 0) {
            return Err(EINVAL);
        }
        return Ok(0);
    }
    let key = key_for(t, uaddr, private)?;
    let word = |t: &mut Task<P>| t.mm.lock().read_obj::<u32>(uaddr);
    // A count argument: Linux takes it as an int, negative meaning none.
    let count = |v: u64| (v as i32).max(0) as u32;
    match cmd {
        WAIT | WAIT_BITSET => {
            let bitset = if cmd == WAIT { u32::MAX } else { val3 as u32 };
            if bitset == 0 {
                return Err(EINVAL);
            }
            // The word changed (before the wait): callers retry on EAGAIN.
            if word(t)? != val as u32 {
                t.wake_at = None;
                return Err(EAGAIN);
            }
            // FUTEX_WAIT's timeout is relative (on CLOCK_MONOTONIC); FUTEX_WAIT_BITSET's an
            // absolute time on CLOCK_MONOTONIC, or CLOCK_REALTIME with that flag.
            let absolute = cmd == WAIT_BITSET;
            if deadline_passed(k, t, timeout, absolute, op & CLOCK_REALTIME != 0)? {
                return Err(ETIMEDOUT);
            }
            queue(k, t, key, bitset);
            Ok(0)
        }
        WAKE | WAKE_BITSET => {
            let bitset = if cmd == WAKE { u32::MAX } else { val3 as u32 };
            if bitset == 0 {
                return Err(EINVAL);
            }
            Ok(k.futex.wake(key, count(val), bitset) as u64)
        }
        REQUEUE | CMP_REQUEUE => {
            let to = key_for(t, uaddr2, private)?;
            if cmd == CMP_REQUEUE && word(t)? != val3 as u32 {
                return Err(EAGAIN);
            }
            // The requeue count travels in the timeout argument.
            Ok(k.futex.requeue(key, to, count(val), count(timeout)) as u64)
        }
        WAKE_OP => {
            let to = key_for(t, uaddr2, private)?;
            let old = wake_op(t, uaddr2, val3 as u32)?;
            let mut n = k.futex.wake(key, count(val), u32::MAX);
            if compare(old, val3 as u32)? {
                n += k.futex.wake(to, count(timeout), u32::MAX);
            }
            Ok(n as u64)
        }
        LOCK_PI | LOCK_PI2 | TRYLOCK_PI => lock_pi(k, t, a, key, cmd == TRYLOCK_PI),
        UNLOCK_PI => unlock_pi(k, t, uaddr, key),
        _ => Err(ENOSYS),
    }
}

/// Queues `t` on `key` until a wake (its result, 0), a signal or its deadline.
fn queue<P: Platform>(k: &mut Kernel, t: &mut Task<P>, key: Key, bitset: u32) {
    k.futex.wait(key, t.tid, bitset);
    t.request = Some(Request::Queue);
}

/// Whether the wait's deadline has passed (the wait timed out). The deadline is set at the
/// first call and kept in `t.wake_at` while the task waits; `None` timeout: no deadline.
fn deadline_passed<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    timeout: u64,
    absolute: bool,
    realtime: bool,
) -> Result<bool, crate::errno::Errno> {
    let Some(want) = super::io::read_timespec(t, timeout, false)? else {
        t.wake_at = None;
        return Ok(false);
    };
    let mono = k.host.now(Clock::Monotonic);
    if t.wake_at.is_none() {
        let remaining = if !absolute {
            want
        } else {
            let clock = if realtime {
                Clock::Realtime
            } else {
                Clock::Monotonic
            };
            want.saturating_sub(k.host.now(clock))
        };
        t.wake_at = Some(mono.saturating_add(remaining));
    }
    if t.wake_at.is_some_and(|d| mono >= d) {
        t.wake_at = None;
        return Ok(true);
    }
    Ok(false)
}

/// `FUTEX_WAKE_OP`'s operation on the word at `addr`: its old value.
fn wake_op<P: Platform>(t: &mut Task<P>, addr: u64, op: u32) -> Result<u32, crate::errno::Errno> {
    const OPARG_SHIFT: u32 = 8;
    let kind = (op >> 28) & 0xf;
    let arg = ((op as i32) << 8 >> 20) as u32; // 12 bits, sign-extended
    let arg = if kind & OPARG_SHIFT != 0 {
        if arg > 31 {
            return Err(EINVAL);
        }
        1u32 << arg
    } else {
        arg
    };
    let mut mm = t.mm.lock();
    let old: u32 = mm.read_obj(addr)?;
    let new = match kind & 7 {
        0 => arg,
        1 => old.wrapping_add(arg),
        2 => old | arg,
        3 => old & !arg,
        4 => old ^ arg,
        _ => return Err(ENOSYS),
    };
    mm.write_obj(addr, &new)?;
    Ok(old)
}

/// `FUTEX_WAKE_OP`'s comparison of the old value.
fn compare(old: u32, op: u32) -> Result<bool, crate::errno::Errno> {
    let cmp = (op >> 24) & 0xf;
    let arg = ((op as i32) << 20 >> 20) as u32; // 12 bits, sign-extended
    let (o, a) = (old as i32, arg as i32);
    Ok(match cmp {
        0 => o == a,
        1 => o != a,
        2 => o < a,
        3 => o <= a,
        4 => o > a,
        5 => o >= a,
        _ => return Err(ENOSYS),
    })
}

/// `FUTEX_LOCK_PI` / `LOCK_PI2` / `TRYLOCK_PI`: takes a free lock word (keeping its
/// OWNER_DIED bit, which the caller reads), or marks it FUTEX_WAITERS and waits until the
/// owner's `UNLOCK_PI` (or death) hands it over.
fn lock_pi<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    a: [u64; 6],
    key: Key,
    try_only: bool,
) -> SysResult {
    let [uaddr, op, _, timeout, ..] = a;
    let tid = t.tid;
    // Woken by a hand-over: the lock is ours (the waker wrote our tid).
    let word: u32 = t.mm.lock().read_obj(uaddr)?;
    let owner = word & FUTEX_TID_MASK;
    if owner == 0 {
        t.mm.lock()
            .write_obj(uaddr, &(tid | (word & FUTEX_OWNER_DIED)))?;
        t.wake_at = None;
        return Ok(0);
    }
    if owner == tid {
        t.wake_at = None;
        return Err(EDEADLK);
    }
    if try_only {
        return Err(EAGAIN);
    }
    // LOCK_PI's timeout is absolute on CLOCK_REALTIME; LOCK_PI2's on CLOCK_MONOTONIC unless
    // FUTEX_CLOCK_REALTIME.
    let realtime = op & !PRIVATE & 0xf == LOCK_PI || op & CLOCK_REALTIME != 0;
    if deadline_passed(k, t, timeout, true, realtime)? {
        return Err(ETIMEDOUT);
    }
    if word & FUTEX_WAITERS == 0 {
        t.mm.lock().write_obj(uaddr, &(word | FUTEX_WAITERS))?;
    }
    queue(k, t, key, u32::MAX);
    Ok(0)
}

/// `FUTEX_UNLOCK_PI`: the owner lets go; the oldest waiter, if any, becomes the owner (its
/// tid in the word, FUTEX_WAITERS kept while others wait) and runs.
fn unlock_pi<P: Platform>(k: &mut Kernel, t: &mut Task<P>, uaddr: u64, key: Key) -> SysResult {
    let word: u32 = t.mm.lock().read_obj(uaddr)?;
    if word & FUTEX_TID_MASK != t.tid {
        return Err(EPERM);
    }
    let new = match k.futex.first_waiter(key) {
        Some(next) => {
            k.futex.wake(key, 1, u32::MAX);
            let more = if k.futex.has_waiters(key) {
                FUTEX_WAITERS
            } else {
                0
            };
            next | more
        }
        None => 0,
    };
    t.mm.lock().write_obj(uaddr, &new).map_err(|_| EFAULT)?;
    Ok(0)
}
