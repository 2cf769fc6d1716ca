//! Futex wait queues: tasks waiting on a word, keyed by where the word lives — the address
//! space and address for private memory, the memory-file offset for shared memory (so a
//! futex in `MAP_SHARED` memory works between processes). A wait ends by a wake on its key,
//! a signal, or its timeout; nothing else retries it.
//!
//! The syscall layer's `futex` queues and wakes here ([`crate::kernel::Kernel::futex`]); the
//! scheduler takes the woken tasks ([`Futexes::take_woken`]) and lets them run, and cancels
//! the wait of a task a signal or its timeout ends, or that exits.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::errno::{Errno, EINVAL};
use crate::kernel::{Kernel, Task};
use crate::platform::Platform;

/// Where a futex word lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// Private memory: the address space (a [`crate::shared::Shared::id`]) and the address.
    Private { mm: usize, addr: u64 },
    /// Shared memory: the word's offset in the memory file.
    Shared { offset: u64 },
    /// A System V IPC object ([`crate::ipc`]): its kind and id.
    Ipc { kind: u8, id: i32 },
}

#[derive(Clone, Copy, Debug)]
struct Waiter {
    tid: u32,
    bitset: u32,
}

#[derive(Default)]
pub struct Futexes {
    queues: BTreeMap<Key, VecDeque<Waiter>>,
    /// Which key each waiting task is queued on.
    waiting: BTreeMap<u32, Key>,
    /// Tasks woken since the scheduler last looked: their `futex` returns 0.
    woken: Vec<u32>,
    /// Waiting tasks whose syscall is made again when woken ([`Self::wait_retry`]).
    retry: alloc::collections::BTreeSet<u32>,
    /// Tasks of `retry` woken since the scheduler last looked.
    retried: Vec<u32>,
    /// `woken.len() + retried.len()`: what the scheduler's fast path checks after every
    /// syscall, in one compare.
    wakes: usize,
    /// Tasks of `retry` woken whose syscall has not been made again yet (they still count as
    /// waiting: `semctl(GETNCNT)`).
    retrying: alloc::collections::BTreeSet<u32>,
}

impl Futexes {
    /// Queues `tid` on `key`; a wake with a bitset sharing a bit with `bitset` ends the wait.
    pub fn wait(&mut self, key: Key, tid: u32, bitset: u32) {
        self.cancel(tid);
        self.queues
            .entry(key)
            .or_default()
            .push_back(Waiter { tid, bitset });
        self.waiting.insert(tid, key);
    }

    /// Queues `tid` on `key` like [`Self::wait`], but a wake makes its syscall again (which
    /// sees whether it can complete now) instead of returning 0: System V IPC's waits.
    pub fn wait_retry(&mut self, key: Key, tid: u32) {
        self.wait(key, tid, u32::MAX);
        self.retry.insert(tid);
    }

    /// Whether `tid` waits after [`Self::wait_retry`], or was woken and has not made its
    /// syscall again yet ([`Self::retry_done`]).
    pub fn is_waiting_or_retrying(&self, tid: u32) -> bool {
        self.waiting.contains_key(&tid) || self.retrying.contains(&tid)
    }

    /// `tid`, woken after [`Self::wait_retry`], makes its syscall again.
    pub fn retry_done(&mut self, tid: u32) {
        self.retrying.remove(&tid);
    }

    /// Whether `tid` still waits (no wake has ended its wait).
    pub fn is_waiting(&self, tid: u32) -> bool {
        self.waiting.contains_key(&tid)
    }

    /// Ends `tid`'s wait without a wake (a signal, its timeout, its exit). Whether it waited.
    pub fn cancel(&mut self, tid: u32) -> bool {
        self.retry.remove(&tid);
        self.retrying.remove(&tid);
        let Some(key) = self.waiting.remove(&tid) else {
            return false;
        };
        if let Some(q) = self.queues.get_mut(&key) {
            q.retain(|w| w.tid != tid);
            if q.is_empty() {
                self.queues.remove(&key);
            }
        }
        true
    }

    /// Wakes up to `n` waiters on `key` whose bitset meets `bitset`, oldest first: how many.
    pub fn wake(&mut self, key: Key, n: u32, bitset: u32) -> u32 {
        let Some(q) = self.queues.get_mut(&key) else {
            return 0;
        };
        let mut woken = 0;
        let mut i = 0;
        while i < q.len() && woken < n {
            if q[i].bitset & bitset != 0 {
                let w = q.remove(i).expect("index in range");
                self.waiting.remove(&w.tid);
                if self.retry.remove(&w.tid) {
                    self.retried.push(w.tid);
                    self.retrying.insert(w.tid);
                } else {
                    self.woken.push(w.tid);
                }
                self.wakes += 1;
                woken += 1;
            } else {
                i += 1;
            }
        }
        if q.is_empty() {
            self.queues.remove(&key);
        }
        woken
    }

    /// Wakes up to `n_wake` waiters on `from` and moves up to `n_requeue` of the rest to
    /// `to` (`FUTEX_REQUEUE`, `FUTEX_CMP_REQUEUE`): how many were woken and moved.
    pub fn requeue(&mut self, from: Key, to: Key, n_wake: u32, n_requeue: u32) -> u32 {
        let woken = self.wake(from, n_wake, u32::MAX);
        if from == to {
            return woken;
        }
        let Some(q) = self.queues.get_mut(&from) else {
            return woken;
        };
        let n = (n_requeue as usize).min(q.len());
        let moved: Vec<Waiter> = q.drain(..n).collect();
        if q.is_empty() {
            self.queues.remove(&from);
        }
        for w in &moved {
            self.waiting.insert(w.tid, to);
        }
        self.queues
            .entry(to)
            .or_default()
            .extend(moved.iter().copied());
        woken + n as u32
    }

    /// The oldest waiter on `key` (a PI futex's next owner).
    pub fn first_waiter(&self, key: Key) -> Option<u32> {
        self.queues.get(&key)?.front().map(|w| w.tid)
    }

    /// Whether anyone waits on `key`.
    pub fn has_waiters(&self, key: Key) -> bool {
        self.queues.contains_key(&key)
    }

    /// Whether any task waits on any futex.
    pub fn any_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Whether woken tasks wait for the scheduler to let them run.
    #[inline]
    pub fn any_woken(&self) -> bool {
        self.wakes != 0
    }

    /// The tasks woken since the last call.
    pub fn take_woken(&mut self) -> Vec<u32> {
        self.wakes -= self.woken.len();
        core::mem::take(&mut self.woken)
    }

    /// The tasks woken since the last call that make their syscall again.
    pub fn take_retried(&mut self) -> Vec<u32> {
        self.wakes -= self.retried.len();
        core::mem::take(&mut self.retried)
    }
}

#[cfg(test)]
mod tests {
    use super::{Futexes, Key};

    const A: Key = Key::Private {
        mm: 1,
        addr: 0x1000,
    };
    const B: Key = Key::Shared { offset: 0x2000 };

    #[test]
    fn wake_is_fifo_bounded_and_bitset_filtered() {
        let mut f = Futexes::default();
        f.wait(A, 10, u32::MAX);
        f.wait(A, 11, 0b01);
        f.wait(A, 12, 0b10);
        assert_eq!(f.wake(A, 1, 0b10), 1);
        assert_eq!(f.take_woken(), [10]);
        assert_eq!(f.wake(A, 5, 0b10), 1);
        assert_eq!(f.take_woken(), [12]);
        assert!(f.is_waiting(11));
        assert!(f.cancel(11));
        assert!(!f.cancel(11));
        assert!(!f.has_waiters(A));
        assert_eq!(f.wake(A, 1, u32::MAX), 0);
    }

    #[test]
    fn retry_waiters_are_woken_to_try_again() {
        let mut f = Futexes::default();
        f.wait_retry(A, 1);
        f.wait(A, 2, u32::MAX);
        assert_eq!(f.wake(A, 10, u32::MAX), 2);
        assert_eq!(f.take_woken(), [2]);
        assert!(f.any_woken());
        assert_eq!(f.take_retried(), [1]);
        assert!(f.is_waiting_or_retrying(1), "until it tries again");
        f.retry_done(1);
        assert!(!f.is_waiting_or_retrying(1));
        // A cancelled retry wait (a signal) is neither.
        f.wait_retry(A, 1);
        assert!(f.cancel(1));
        assert!(!f.is_waiting_or_retrying(1));
        assert_eq!(f.wake(A, 10, u32::MAX), 0);
    }

    #[test]
    fn requeue_moves_the_rest() {
        let mut f = Futexes::default();
        for tid in 1..=5 {
            f.wait(A, tid, u32::MAX);
        }
        assert_eq!(f.requeue(A, B, 1, 2), 3);
        assert_eq!(f.take_woken(), [1]);
        assert_eq!(f.first_waiter(B), Some(2));
        assert_eq!(f.first_waiter(A), Some(4));
        assert_eq!(f.wake(B, 10, u32::MAX), 2);
        assert_eq!(f.take_woken(), [2, 3]);
        // A requeued waiter's cancel finds it on its new queue.
        f.wait(A, 9, u32::MAX);
        assert_eq!(f.requeue(A, B, 0, 10), 3);
        assert!(f.cancel(9));
        assert_eq!(f.wake(B, 10, u32::MAX), 2);
    }
}

/// `FUTEX_WAITERS`: someone waits (or is about to) for the lock word's owner.
pub const FUTEX_WAITERS: u32 = 0x8000_0000;
/// `FUTEX_OWNER_DIED`: the lock's owner died holding it (robust mutexes).
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
/// The owner's tid in a lock word.
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// The key of the futex word at `addr` of `t`'s memory: `private` (`FUTEX_PRIVATE_FLAG`) or
/// private memory keys by address space and address, shared memory by its frame.
pub fn key_for<P: Platform>(t: &Task<P>, addr: u64, private: bool) -> Result<Key, Errno> {
    if !addr.is_multiple_of(4) {
        return Err(EINVAL);
    }
    if !private {
        if let Some(offset) = t.mm.lock().shared_word(addr)? {
            return Ok(Key::Shared { offset });
        }
    }
    Ok(Key::Private {
        mm: t.mm.id(),
        addr,
    })
}

/// The most entries of a robust list walked at exit (Linux's `ROBUST_LIST_LIMIT`): the list
/// is the app's, and may loop.
const ROBUST_LIST_LIMIT: u32 = 2048;

/// A thread exits: each robust futex it holds (its `set_robust_list` list, and the entry it
/// was about to add or remove) is marked `FUTEX_OWNER_DIED` and one waiter woken, as Linux's
/// `exit_robust_list` does; a bad pointer ends the walk.
pub fn exit_robust_list<P: Platform>(k: &mut Kernel, t: &Task<P>) {
    let (head, len) = t.robust_list;
    if head == 0 || len != 24 {
        return;
    }
    let Ok(h) = t.mm.lock().read_obj::<RobustListHead>(head) else {
        return;
    };
    let offset = h.futex_offset;
    let mut entry = h.next;
    let mut n = 0;
    while entry & !1 != head && n < ROBUST_LIST_LIMIT {
        let Ok(next) = t.mm.lock().read_obj::<u64>(entry & !1) else {
            return;
        };
        if entry & !1 != h.list_op_pending & !1 {
            futex_death(
                k,
                t,
                (entry & !1).wrapping_add(offset as u64),
                entry & 1 != 0,
            );
        }
        entry = next;
        n += 1;
    }
    if h.list_op_pending != 0 {
        let pending = h.list_op_pending;
        futex_death(
            k,
            t,
            (pending & !1).wrapping_add(offset as u64),
            pending & 1 != 0,
        );
    }
}

/// `struct robust_list_head`.
#[derive(Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
#[repr(C)]
struct RobustListHead {
    next: u64,
    futex_offset: i64,
    list_op_pending: u64,
}

/// The lock word at `addr`, held by exiting `t`: marked as its owner's death, and a waiter
/// told (a PI lock is handed to its oldest waiter, as Linux's PI state does).
fn futex_death<P: Platform>(k: &mut Kernel, t: &Task<P>, addr: u64, pi: bool) {
    let Ok(word) = t.mm.lock().read_obj::<u32>(addr) else {
        return;
    };
    if word & FUTEX_TID_MASK != t.tid {
        return;
    }
    let Ok(key) = key_for(t, addr, false) else {
        return;
    };
    let waiters = word & FUTEX_WAITERS != 0;
    if pi {
        if let Some(next) = k.futex.first_waiter(key) {
            k.futex.wake(key, 1, u32::MAX);
            let more = if k.futex.has_waiters(key) {
                FUTEX_WAITERS
            } else {
                0
            };
            let _ =
                t.mm.lock()
                    .write_obj(addr, &(next | FUTEX_OWNER_DIED | more));
            return;
        }
    }
    let new = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
    if t.mm.lock().write_obj(addr, &new).is_ok() && waiters {
        k.futex.wake(key, 1, u32::MAX);
    }
}
