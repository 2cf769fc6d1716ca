//! System V IPC: semaphore sets, message queues and shared memory segments, one namespace per
//! sandbox ([`Ipc`], in [`crate::kernel::Kernel::ipc`]). The syscalls are in `syscalls/ipc.rs`.
//!
//! Objects are found by key (`*get`) or by id: an id is the object's slot and a sequence
//! number, as Linux builds it (`ipc_buildid`), so a removed object's id does not name its
//! successor. A task that must wait (a `semop` that cannot proceed, a full queue, no matching
//! message) waits on the object's futex-style wait queue ([`crate::futex::Key::Ipc`]); a
//! change to the object wakes its waiters, whose syscall is made again and sees whether it
//! can complete now, or that the object is gone (EIDRM).
//!
//! Shared memory segments own their frames of the memory file (allocated when created); an
//! attach maps them as `MAP_SHARED | MAP_ANONYMOUS` memory, so a `fork` shares them like any
//! shared mapping, and the attach count is the frames' owners other than the segment.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::errno::{Errno, EACCES, EEXIST, EINVAL, ENOENT, ENOSPC, EPERM, ERANGE};
use crate::futex::Key;

pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: i32 = 0o1000;
pub const IPC_EXCL: i32 = 0o2000;
pub const IPC_NOWAIT: i32 = 0o4000;

pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;

/// `SEM_UNDO`: the operation is undone when the process exits.
pub const SEM_UNDO: i16 = 0x1000;

/// Which kind of object (the futex key's `kind`).
pub const KIND_SEM: u8 = 0;
pub const KIND_MSG: u8 = 1;
pub const KIND_SHM: u8 = 2;

// Linux's default limits (`ipc/` and `include/uapi/linux/{sem,msg,shm}.h`).
/// Ids per kind (`IPCMNI`): an id's slot part.
pub const IPCMNI: u32 = 32768;
pub const SEMMNI: usize = 32000;
pub const SEMMSL: i32 = 32000;
/// Semaphores in all sets: Linux's default is SEMMNI * SEMMSL, but they live in the Sentry's
/// heap here, so the sandbox's limit is lower (as a lowered `kernel.sem` sysctl would be).
pub const SEMMNS: u64 = 1 << 18;
pub const SEMOPM: u32 = 500;
pub const SEMVMX: i32 = 32767;
pub const SEMAEM: i32 = SEMVMX;
pub const MSGMNI: usize = 32000;
pub const MSGMAX: u64 = 8192;
pub const MSGMNB: u64 = 16384;
/// Bytes of messages (text and [`MSG_OVERHEAD`] each) queued in all queues at most: they live in the Sentry's heap; a
/// `msgsnd` past it fails with ENOMEM (Linux's answer when it cannot allocate the message).
pub const MSG_TOTAL_MAX: u64 = 8 << 20;
/// What a message takes besides its text, as [`MSG_TOTAL_MAX`] counts it.
pub const MSG_OVERHEAD: u64 = 64;
pub const SHMMNI: usize = 4096;
pub const SHMMIN: u64 = 1;
pub const SHMMAX: u64 = u64::MAX - (1 << 24);
pub const SHMALL: u64 = u64::MAX - (1 << 24);

/// `shm_perm.mode` bits of a segment: removed (destroyed when the last attach goes), locked.
pub const SHM_DEST: u32 = 0o1000;
pub const SHM_LOCKED: u32 = 0o2000;

/// Who asks: effective uid and gid (and whether they may override permissions: root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
}

impl Cred {
    /// CAP_IPC_OWNER / CAP_SYS_ADMIN: root's.
    pub fn privileged(self) -> bool {
        self.uid == 0
    }
}

/// `struct kern_ipc_perm`: what every object has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// The low 9 bits: permissions; above: state bits (`SHM_DEST`, ...).
    pub mode: u32,
    pub seq: u16,
}

impl Perm {
    /// Linux's `ipcperms`: whether `cred` may access with `flag`'s rwx bits (in any of the
    /// three positions: `S_IRUGO`, `S_IWUGO`, or `*get`'s mode argument); root may always.
    pub fn check(&self, cred: Cred, flag: i32) -> Result<(), Errno> {
        let flag = flag as u32;
        let requested = (flag >> 6 | flag >> 3 | flag) & 0o7;
        let mut granted = self.mode;
        if cred.uid == self.cuid || cred.uid == self.uid {
            granted >>= 6;
        } else if cred.gid == self.cgid || cred.gid == self.gid {
            granted >>= 3;
        }
        if requested & !granted & 0o7 != 0 && !cred.privileged() {
            return Err(EACCES);
        }
        Ok(())
    }

    /// `IPC_SET` and `IPC_RMID` (`ipcctl_obtain_check`): the owner, the creator, or root.
    pub fn check_owner(&self, cred: Cred) -> Result<(), Errno> {
        if cred.uid == self.uid || cred.uid == self.cuid || cred.privileged() {
            Ok(())
        } else {
            Err(EPERM)
        }
    }

    /// `IPC_SET`: new owner and permission bits (the state bits stay).
    pub fn set(&mut self, uid: u32, gid: u32, mode: u32) {
        self.uid = uid;
        self.gid = gid;
        self.mode = (self.mode & !0o777) | (mode & 0o777);
    }
}

/// `S_IRUGO` / `S_IWUGO` as permission requests.
pub const READ: i32 = 0o444;
pub const WRITE: i32 = 0o222;
pub const READ_WRITE: i32 = 0o666;

/// One object with its permissions.
#[derive(Debug)]
pub struct Obj<T> {
    pub perm: Perm,
    pub ctime: i64,
    pub data: T,
}

/// The objects of one kind, by slot (`struct ipc_ids`).
#[derive(Debug)]
pub struct Ids<T> {
    objs: BTreeMap<u32, Obj<T>>,
    /// The sequence number the next object gets.
    seq: u16,
    /// Objects a kind allows at most.
    limit: usize,
}

impl<T> Ids<T> {
    pub fn new(limit: usize) -> Self {
        Ids {
            objs: BTreeMap::new(),
            seq: 0,
            limit,
        }
    }

    fn id_of(idx: u32, seq: u16) -> i32 {
        (u32::from(seq) * IPCMNI + idx) as i32
    }

    /// The object named by `id` (EINVAL: none, or another object now has its slot).
    pub fn get(&mut self, id: i32) -> Result<&mut Obj<T>, Errno> {
        let id = u32::try_from(id).map_err(|_| EINVAL)?;
        let obj = self.objs.get_mut(&(id % IPCMNI)).ok_or(EINVAL)?;
        if u32::from(obj.perm.seq) != id / IPCMNI {
            return Err(EINVAL);
        }
        Ok(obj)
    }

    /// The object in slot `idx` with its id (`*_STAT`, which take a slot).
    pub fn get_by_idx(&mut self, idx: u32) -> Option<(i32, &mut Obj<T>)> {
        let obj = self.objs.get_mut(&idx)?;
        Some((Self::id_of(idx, obj.perm.seq), obj))
    }

    /// Whether `id` names an object.
    pub fn exists(&mut self, id: i32) -> bool {
        self.get(id).is_ok()
    }

    /// Removes the object named by `id`.
    pub fn remove(&mut self, id: i32) -> Option<Obj<T>> {
        self.get(id).ok()?;
        self.objs.remove(&(id as u32 % IPCMNI))
    }

    /// The id of the object with `key` (never `IPC_PRIVATE`'s).
    pub fn find_key(&self, key: i32) -> Option<i32> {
        if key == IPC_PRIVATE {
            return None;
        }
        self.objs
            .iter()
            .find(|(_, o)| o.perm.key == key)
            .map(|(&idx, o)| Self::id_of(idx, o.perm.seq))
    }

    /// Adds an object: its id (ENOSPC: the kind's limit is reached).
    pub fn add(
        &mut self,
        key: i32,
        mode: i32,
        cred: Cred,
        now: i64,
        data: T,
    ) -> Result<i32, Errno> {
        if self.objs.len() >= self.limit {
            return Err(ENOSPC);
        }
        let idx = (0..IPCMNI)
            .find(|i| !self.objs.contains_key(i))
            .ok_or(ENOSPC)?;
        let seq = self.seq;
        // (Every u16 sequence keeps an id a positive int: IPCMNI is 2^15.)
        self.seq = seq.wrapping_add(1);
        let perm = Perm {
            key,
            uid: cred.uid,
            gid: cred.gid,
            cuid: cred.uid,
            cgid: cred.gid,
            mode: (mode as u32) & 0o777,
            seq,
        };
        self.objs.insert(
            idx,
            Obj {
                perm,
                ctime: now,
                data,
            },
        );
        Ok(Self::id_of(idx, seq))
    }

    /// Linux's `ipcget`: the object `key` names, created (by `create`) as `flg` says; an
    /// existing one is checked for `IPC_EXCL`, permissions and then `more_checks`.
    pub fn get_or_create(
        &mut self,
        key: i32,
        flg: i32,
        cred: Cred,
        now: i64,
        create: impl FnOnce() -> Result<T, Errno>,
        more_checks: impl FnOnce(&T) -> Result<(), Errno>,
    ) -> Result<i32, Errno> {
        let found = self.find_key(key);
        let Some(id) = found else {
            if key != IPC_PRIVATE && flg & IPC_CREAT == 0 {
                return Err(ENOENT);
            }
            if self.objs.len() >= self.limit {
                return Err(ENOSPC);
            }
            let data = create()?;
            return self.add(key, flg, cred, now, data);
        };
        if flg & IPC_CREAT != 0 && flg & IPC_EXCL != 0 {
            return Err(EEXIST);
        }
        let obj = self.get(id)?;
        obj.perm.check(cred, flg)?;
        more_checks(&obj.data)?;
        Ok(id)
    }

    /// The highest slot in use (what `*_INFO` returns), 0 with none.
    pub fn max_idx(&self) -> u32 {
        self.objs.keys().next_back().copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.objs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    /// Every object with its id.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (i32, &mut Obj<T>)> {
        self.objs
            .iter_mut()
            .map(|(&idx, o)| (Self::id_of(idx, o.perm.seq), o))
    }
}

/// One semaphore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sem {
    pub val: u16,
    /// The last process that changed it.
    pub pid: u32,
}

#[derive(Debug, Default)]
pub struct SemSet {
    pub sems: Vec<Sem>,
    /// The last `semop` (s).
    pub otime: i64,
}

/// `struct sembuf`.
#[derive(Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes)]
#[repr(C)]
pub struct Sembuf {
    pub num: u16,
    pub op: i16,
    pub flg: i16,
}

/// What a `semop` on a set came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SemOutcome {
    /// Applied (every operation).
    Done,
    /// Nothing applied: operation `blocking` must wait (for an increase, or for zero).
    Block { blocking: usize },
}

impl SemSet {
    /// Linux's `perform_atomic_semop`: `ops` applied in order to a copy of the values; all of
    /// them take effect, or none. `adj` is the process's undo adjustments for the set.
    pub fn apply(
        &mut self,
        ops: &[Sembuf],
        adj: &mut [i16],
        pid: u32,
    ) -> Result<SemOutcome, Errno> {
        let mut vals: Vec<i32> = self.sems.iter().map(|s| i32::from(s.val)).collect();
        let mut new_adj: Vec<i32> = adj.iter().map(|&a| i32::from(a)).collect();
        for (i, op) in ops.iter().enumerate() {
            let n = usize::from(op.num);
            let cur = vals[n];
            let change = i32::from(op.op);
            if change == 0 && cur != 0 {
                return self.would_block(op, i);
            }
            let result = cur + change;
            if result < 0 {
                return self.would_block(op, i);
            }
            if result > SEMVMX {
                return Err(ERANGE);
            }
            if op.flg & SEM_UNDO != 0 {
                let undo = new_adj[n] - change;
                if !(-SEMAEM - 1..=SEMAEM).contains(&undo) {
                    return Err(ERANGE);
                }
                new_adj[n] = undo;
            }
            vals[n] = result;
        }
        for op in ops {
            let n = usize::from(op.num);
            self.sems[n].val = vals[n] as u16;
            self.sems[n].pid = pid;
        }
        for (a, n) in adj.iter_mut().zip(new_adj) {
            *a = n as i16;
        }
        Ok(SemOutcome::Done)
    }

    fn would_block(&self, op: &Sembuf, i: usize) -> Result<SemOutcome, Errno> {
        if i32::from(op.flg) & IPC_NOWAIT != 0 {
            return Err(crate::errno::EAGAIN);
        }
        Ok(SemOutcome::Block { blocking: i })
    }
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub mtype: i64,
    pub text: Vec<u8>,
}

#[derive(Debug)]
pub struct MsgQueue {
    pub msgs: VecDeque<Msg>,
    /// Bytes of text queued.
    pub cbytes: u64,
    /// The most bytes the queue holds (`msg_qbytes`).
    pub qbytes: u64,
    pub lspid: u32,
    pub lrpid: u32,
    pub stime: i64,
    pub rtime: i64,
}

impl Default for MsgQueue {
    fn default() -> Self {
        MsgQueue {
            msgs: VecDeque::new(),
            cbytes: 0,
            qbytes: MSGMNB,
            lspid: 0,
            lrpid: 0,
            stime: 0,
            rtime: 0,
        }
    }
}

/// `msgrcv`'s `MSG_EXCEPT`.
pub const MSG_EXCEPT: i32 = 0o20000;

impl MsgQueue {
    /// Whether a message of `len` bytes fits (Linux's `msg_fits_inqueue`).
    pub fn fits(&self, len: u64) -> bool {
        self.cbytes + len <= self.qbytes && (self.msgs.len() as u64) < self.qbytes
    }

    pub fn push(&mut self, msg: Msg) {
        self.cbytes += msg.text.len() as u64;
        self.msgs.push_back(msg);
    }

    /// The index of the message `msgrcv(msgtyp, flg)` takes: the first (0), the first of
    /// type `msgtyp` (> 0; with `MSG_EXCEPT` of another type), the first of the lowest type
    /// not above `-msgtyp` (< 0).
    pub fn find(&self, msgtyp: i64, flg: i32) -> Option<usize> {
        if msgtyp == 0 {
            return (!self.msgs.is_empty()).then_some(0);
        }
        if msgtyp > 0 {
            let except = flg & MSG_EXCEPT != 0;
            return self.msgs.iter().position(|m| (m.mtype == msgtyp) != except);
        }
        let limit = msgtyp.checked_neg().unwrap_or(i64::MAX);
        let mut best: Option<(usize, i64)> = None;
        for (i, m) in self.msgs.iter().enumerate() {
            if m.mtype <= limit && best.is_none_or(|(_, t)| m.mtype < t) {
                best = Some((i, m.mtype));
            }
        }
        best.map(|(i, _)| i)
    }

    pub fn take(&mut self, i: usize) -> Option<Msg> {
        let m = self.msgs.remove(i)?;
        self.cbytes -= m.text.len() as u64;
        Some(m)
    }
}

#[derive(Debug, Default)]
pub struct ShmSeg {
    /// `shm_segsz`: the size asked for.
    pub size: u64,
    /// The segment's frames (one owner each is the segment's).
    pub frames: Vec<u64>,
    pub atime: i64,
    pub dtime: i64,
    pub cpid: u32,
    pub lpid: u32,
}

/// What a task waits for (between its syscall's tries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    pub kind: u8,
    pub id: i32,
    /// A `semop`'s operation that blocks: the semaphore, and whether it waits for zero.
    pub sem: Option<(u16, bool)>,
}

impl Wait {
    pub fn key(&self) -> Key {
        Key::Ipc {
            kind: self.kind,
            id: self.id,
        }
    }
}

/// A sandbox's System V IPC objects.
#[derive(Debug)]
pub struct Ipc {
    pub sems: Ids<SemSet>,
    pub msgs: Ids<MsgQueue>,
    pub shms: Ids<ShmSeg>,
    /// `SEM_UNDO` adjustments: (process, set id) → one per semaphore.
    pub undo: BTreeMap<(u32, i32), Vec<i16>>,
    /// Tasks waiting (or woken and about to try again), by tid.
    pub waits: BTreeMap<u32, Wait>,
}

impl Default for Ipc {
    fn default() -> Self {
        Ipc {
            sems: Ids::new(SEMMNI),
            msgs: Ids::new(MSGMNI),
            shms: Ids::new(SHMMNI),
            undo: BTreeMap::new(),
            waits: BTreeMap::new(),
        }
    }
}

impl Ipc {
    /// What the queued messages of all queues take of the Sentry's heap, about: their text
    /// and [`MSG_OVERHEAD`] each.
    pub fn msg_bytes(&self) -> u64 {
        self.msgs
            .objs
            .values()
            .map(|o| o.data.cbytes + MSG_OVERHEAD * o.data.msgs.len() as u64)
            .sum()
    }

    /// Semaphores in use in all sets.
    pub fn sems_in_use(&self) -> u64 {
        self.sems
            .objs
            .values()
            .map(|o| o.data.sems.len() as u64)
            .sum()
    }

    /// Removes semaphore set `id`'s undo adjustments (all processes).
    pub fn forget_undo(&mut self, id: i32) {
        self.undo.retain(|&(_, s), _| s != id);
    }

    /// Clears semaphore `num`'s adjustments in set `id` (`SETVAL`), or all of them (None:
    /// `SETALL`).
    pub fn clear_undo(&mut self, id: i32, num: Option<usize>) {
        for (_, adj) in self.undo.iter_mut().filter(|((_, s), _)| *s == id) {
            match num {
                Some(n) => adj[n] = 0,
                None => adj.iter_mut().for_each(|a| *a = 0),
            }
        }
    }

    /// Process `pid` ended: its `SEM_UNDO` adjustments are applied (each value kept within
    /// 0..=SEMVMX, as Linux's `exit_sem` does). The sets changed, whose waiters to wake.
    pub fn exit_process(&mut self, pid: u32) -> Vec<i32> {
        let mine: Vec<(u32, i32)> = self
            .undo
            .range((pid, i32::MIN)..=(pid, i32::MAX))
            .map(|(&k, _)| k)
            .collect();
        let mut changed = Vec::new();
        for key in mine {
            let adj = self.undo.remove(&key).unwrap_or_default();
            let Ok(set) = self.sems.get(key.1) else {
                continue;
            };
            for (s, &a) in set.data.sems.iter_mut().zip(&adj) {
                if a != 0 {
                    let v = (i32::from(s.val) + i32::from(a)).clamp(0, SEMVMX);
                    s.val = v as u16;
                    s.pid = pid;
                }
            }
            changed.push(key.1);
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: Cred = Cred { uid: 0, gid: 0 };
    const USER: Cred = Cred {
        uid: 1000,
        gid: 1000,
    };

    #[test]
    fn ids_carry_a_sequence() {
        let mut ids: Ids<u32> = Ids::new(4);
        let a = ids.add(IPC_PRIVATE, 0o600, ROOT, 0, 1).unwrap();
        assert_eq!(a, 0);
        assert!(ids.remove(a).is_some());
        let b = ids.add(IPC_PRIVATE, 0o600, ROOT, 0, 2).unwrap();
        assert_eq!(b, IPCMNI as i32, "same slot, next sequence");
        assert!(ids.get(a).is_err());
        assert_eq!(ids.get(b).unwrap().data, 2);
        assert_eq!(ids.get(-1).unwrap_err(), EINVAL);
    }

    #[test]
    fn get_or_create_follows_ipcget() {
        let mut ids: Ids<u32> = Ids::new(4);
        let ok = |_: &u32| Ok(());
        assert_eq!(
            ids.get_or_create(42, 0o600, ROOT, 0, || Ok(1), ok),
            Err(ENOENT)
        );
        let id = ids
            .get_or_create(42, IPC_CREAT | 0o600, ROOT, 0, || Ok(1), ok)
            .unwrap();
        assert_eq!(ids.get_or_create(42, 0, ROOT, 0, || Ok(1), ok), Ok(id));
        assert_eq!(
            ids.get_or_create(42, IPC_CREAT | IPC_EXCL, ROOT, 0, || Ok(1), ok),
            Err(EEXIST)
        );
        assert_eq!(
            ids.get_or_create(42, 0o400, USER, 0, || Ok(1), ok),
            Err(EACCES)
        );
        assert_eq!(
            ids.get_or_create(42, 0, ROOT, 0, || Ok(1), |_| Err(EINVAL)),
            Err(EINVAL)
        );
    }

    #[test]
    fn permissions_by_owner_group_other() {
        let mut p = Perm {
            key: 0,
            uid: 1000,
            gid: 50,
            cuid: 1000,
            cgid: 50,
            mode: 0o640,
            seq: 0,
        };
        assert!(p.check(USER, READ_WRITE).is_ok());
        let group = Cred { uid: 7, gid: 50 };
        assert!(p.check(group, READ).is_ok());
        assert_eq!(p.check(group, WRITE), Err(EACCES));
        let other = Cred { uid: 7, gid: 7 };
        assert_eq!(p.check(other, READ), Err(EACCES));
        assert!(p.check(ROOT, READ_WRITE).is_ok());
        assert_eq!(p.check_owner(other), Err(EPERM));
        p.set(7, 7, SHM_DEST | 0o604);
        assert_eq!(p.mode, 0o604);
        assert!(p.check(Cred { uid: 9, gid: 9 }, READ).is_ok());
    }

    fn op(num: u16, op: i16, flg: i16) -> Sembuf {
        Sembuf { num, op, flg }
    }

    #[test]
    fn semop_is_all_or_nothing() {
        let mut s = SemSet {
            sems: alloc::vec![Sem::default(); 2],
            otime: 0,
        };
        let mut adj = alloc::vec![0i16; 2];
        assert_eq!(
            s.apply(&[op(0, 2, 0), op(1, -1, 0)], &mut adj, 5),
            Ok(SemOutcome::Block { blocking: 1 })
        );
        assert_eq!(s.sems[0].val, 0, "nothing applied");
        assert_eq!(
            s.apply(&[op(0, 2, SEM_UNDO), op(0, -1, 0)], &mut adj, 5),
            Ok(SemOutcome::Done)
        );
        assert_eq!(s.sems[0], Sem { val: 1, pid: 5 });
        assert_eq!(adj, [-2, 0]);
        assert_eq!(
            s.apply(&[op(1, 0, 0), op(0, -2, IPC_NOWAIT as i16)], &mut adj, 5),
            Err(crate::errno::EAGAIN)
        );
        assert_eq!(
            s.apply(&[op(1, 32767, 0), op(1, 1, 0)], &mut adj, 5),
            Err(ERANGE)
        );
    }

    #[test]
    fn undo_is_applied_at_exit_clamped() {
        let mut ipc = Ipc::default();
        let id = ipc
            .sems
            .add(
                IPC_PRIVATE,
                0o600,
                ROOT,
                0,
                SemSet {
                    sems: alloc::vec![Sem { val: 3, pid: 1 }; 2],
                    otime: 0,
                },
            )
            .unwrap();
        ipc.undo.insert((9, id), alloc::vec![-5, 2]);
        ipc.undo.insert((10, id), alloc::vec![1, 1]);
        assert_eq!(ipc.exit_process(9), [id]);
        let set = &ipc.sems.get(id).unwrap().data;
        assert_eq!(set.sems[0], Sem { val: 0, pid: 9 });
        assert_eq!(set.sems[1], Sem { val: 5, pid: 9 });
        assert!(ipc.undo.contains_key(&(10, id)));
        ipc.clear_undo(id, Some(0));
        assert_eq!(ipc.undo[&(10, id)], [0, 1]);
    }

    #[test]
    fn msgrcv_type_selection() {
        let mut q = MsgQueue::default();
        for t in [3, 1, 2, 1] {
            q.push(Msg {
                mtype: t,
                text: alloc::vec![t as u8],
            });
        }
        assert_eq!(q.find(0, 0), Some(0));
        assert_eq!(q.find(2, 0), Some(2));
        assert_eq!(q.find(3, MSG_EXCEPT), Some(1));
        assert_eq!(q.find(-2, 0), Some(1));
        assert_eq!(q.find(-3, 0), Some(1));
        assert_eq!(q.find(5, 0), None);
        assert_eq!(q.find(i64::MIN, 0), Some(1));
        assert_eq!(q.take(1).unwrap().mtype, 1);
        assert_eq!(q.cbytes, 3);
        assert!(q.fits(MSGMNB - 3));
        assert!(!q.fits(MSGMNB - 2));
    }
}
