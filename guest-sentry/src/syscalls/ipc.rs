//! System V IPC syscalls over the sandbox's namespace ([`crate::ipc`]): `semget`, `semop`,
//! `semtimedop`, `semctl`, `msgget`, `msgsnd`, `msgrcv`, `msgctl`, `shmget`, `shmat`, `shmdt`,
//! `shmctl`, with Linux's checks in Linux's order (`ipc/sem.c`, `ipc/msg.c`, `ipc/shm.c`).
//!
//! A call that must wait queues the task on the object's wait queue and is made again when
//! the object changes (or its timeout passes); one made again for an object that is gone
//! fails with EIDRM. Signals end the waits with EINTR (these calls are never restarted).

use alloc::vec::Vec;

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::errno::{
    Errno, SysResult, E2BIG, EAGAIN, EFBIG, EIDRM, EINVAL, ENOMEM, ENOMSG, ENOSPC, EPERM, ERANGE,
};
use crate::futex::Key;
use crate::host::Clock;
use crate::ipc::*;
use crate::kernel::{Kernel, Task, SANDBOX_IDS};
use crate::memfile::PAGE_SIZE;
use crate::platform::{Access, Platform};
use crate::sched::Request;

// semctl commands.
const GETPID: i32 = 11;
const GETVAL: i32 = 12;
const GETALL: i32 = 13;
const GETNCNT: i32 = 14;
const GETZCNT: i32 = 15;
const SETVAL: i32 = 16;
const SETALL: i32 = 17;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;
const SEM_STAT_ANY: i32 = 20;
// msgctl commands and msgrcv flags.
const MSG_STAT: i32 = 11;
const MSG_INFO: i32 = 12;
const MSG_STAT_ANY: i32 = 13;
const MSG_NOERROR: i32 = 0o10000;
const MSG_COPY: i32 = 0o40000;
// shmctl commands and shmat flags.
const SHM_LOCK: i32 = 11;
const SHM_UNLOCK: i32 = 12;
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHM_STAT_ANY: i32 = 15;
const SHM_RDONLY: i32 = 0o10000;
const SHM_RND: i32 = 0o20000;
const SHM_REMAP: i32 = 0o40000;
const SHM_EXEC: i32 = 0o100000;
const SHMLBA: u64 = PAGE_SIZE;

/// `struct ipc64_perm` (x86-64).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct IpcPerm64 {
    key: i32,
    uid: u32,
    gid: u32,
    cuid: u32,
    cgid: u32,
    mode: u32,
    seq: u16,
    pad2: u16,
    pad3: u32,
    unused1: u64,
    unused2: u64,
}

impl From<&Perm> for IpcPerm64 {
    fn from(p: &Perm) -> Self {
        IpcPerm64 {
            key: p.key,
            uid: p.uid,
            gid: p.gid,
            cuid: p.cuid,
            cgid: p.cgid,
            mode: p.mode,
            seq: p.seq,
            ..Default::default()
        }
    }
}

/// `struct semid64_ds` (x86-64).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct SemidDs {
    perm: IpcPerm64,
    otime: i64,
    unused1: u64,
    ctime: i64,
    unused2: u64,
    nsems: u64,
    unused3: u64,
    unused4: u64,
}

/// `struct msqid64_ds` (x86-64).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct MsqidDs {
    perm: IpcPerm64,
    stime: i64,
    rtime: i64,
    ctime: i64,
    cbytes: u64,
    qnum: u64,
    qbytes: u64,
    lspid: i32,
    lrpid: i32,
    unused4: u64,
    unused5: u64,
}

/// `struct shmid64_ds` (x86-64).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct ShmidDs {
    perm: IpcPerm64,
    segsz: u64,
    atime: i64,
    dtime: i64,
    ctime: i64,
    cpid: i32,
    lpid: i32,
    nattch: u64,
    unused4: u64,
    unused5: u64,
}

/// `struct seminfo`.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct Seminfo {
    semmap: i32,
    semmni: i32,
    semmns: i32,
    semmnu: i32,
    semmsl: i32,
    semopm: i32,
    semume: i32,
    semusz: i32,
    semvmx: i32,
    semaem: i32,
}

/// `struct msginfo`.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct Msginfo {
    msgpool: i32,
    msgmap: i32,
    msgmax: i32,
    msgmnb: i32,
    msgmni: i32,
    msgssz: i32,
    msgtql: i32,
    msgseg: u16,
    pad: u16,
}

/// `struct shminfo64`.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct Shminfo64 {
    shmmax: u64,
    shmmin: u64,
    shmmni: u64,
    shmseg: u64,
    shmall: u64,
    unused: [u64; 4],
}

/// `struct shm_info`.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct ShmInfo {
    used_ids: i32,
    pad: u32,
    shm_tot: u64,
    shm_rss: u64,
    shm_swp: u64,
    swap_attempts: u64,
    swap_successes: u64,
}

// The layouts are Linux's (x86-64): the sizes `copy_to_user` writes.
const _: () = {
    assert!(size_of::<IpcPerm64>() == 48);
    assert!(size_of::<SemidDs>() == 104);
    assert!(size_of::<MsqidDs>() == 120);
    assert!(size_of::<ShmidDs>() == 112);
    assert!(size_of::<Seminfo>() == 40);
    assert!(size_of::<Msginfo>() == 32);
    assert!(size_of::<Shminfo64>() == 72);
    assert!(size_of::<ShmInfo>() == 48);
};

/// Who the sandbox's tasks are.
/// The object a `*ctl` stat command reports, with its id: `IPC_STAT` names it by id, the
/// `*_STAT` commands by slot; read permission is checked but for `*_STAT_ANY` (`stat_any`).
fn stat_target<T>(
    ids: &mut Ids<T>,
    cmd: i32,
    id: i32,
    stat_any: i32,
) -> Result<(i32, &mut Obj<T>), Errno> {
    let (id, obj) = if cmd == IPC_STAT {
        (id, ids.get(id)?)
    } else {
        ids.get_by_idx(id as u32).ok_or(EINVAL)?
    };
    if cmd != stat_any {
        obj.perm.check(cred(), READ)?;
    }
    Ok((id, obj))
}

fn cred() -> Cred {
    Cred {
        uid: SANDBOX_IDS[1],
        gid: SANDBOX_IDS[3],
    }
}

/// CLOCK_REALTIME in seconds (the objects' times).
fn now_s(k: &Kernel) -> i64 {
    (k.host.now(Clock::Realtime) / 1_000_000_000) as i64
}

/// Wakes every task waiting on object `id` of `kind`: each tries its call again.
fn wake_all(k: &mut Kernel, kind: u8, id: i32) {
    k.futex.wake(Key::Ipc { kind, id }, u32::MAX, u32::MAX);
}

/// The task waits on `w`'s object until it changes, a signal, or its deadline.
fn queue<P: Platform>(k: &mut Kernel, t: &mut Task<P>, w: Wait) -> SysResult {
    k.ipc.waits.insert(t.tid, w);
    k.futex.wait_retry(w.key(), t.tid);
    t.request = Some(Request::Queue);
    Ok(0)
}

/// Whether the wait's deadline (`timeout` ns from the first try; None: none) has passed. The
/// deadline is kept in `t.wake_at` between tries.
fn timed_out<P: Platform>(k: &Kernel, t: &mut Task<P>, timeout: Option<u64>) -> bool {
    let Some(rel) = timeout else {
        return false;
    };
    let mono = k.host.now(Clock::Monotonic);
    let at = *t.wake_at.get_or_insert(mono.saturating_add(rel));
    mono >= at
}

/// Runs a call that may wait: the deadline is forgotten unless it queued the task again.
fn waiting_call<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    kind: u8,
    id: i32,
    f: impl FnOnce(&mut Kernel, &mut Task<P>) -> SysResult,
) -> SysResult {
    // Whether this try follows a wake of a wait on this very object (gone now: EIDRM). A
    // wait a signal or its timeout ended was cancelled: that call is over, this one is new.
    let woken = k.futex.is_waiting_or_retrying(t.tid);
    k.futex.retry_done(t.tid);
    let retry = k
        .ipc
        .waits
        .remove(&t.tid)
        .is_some_and(|w| woken && w.kind == kind && w.id == id);
    let r = f(k, t);
    let queued = matches!(t.request, Some(Request::Queue));
    if !queued {
        t.wake_at = None;
    }
    match r {
        Err(EINVAL) if retry => Err(EIDRM),
        r => r,
    }
}

/// Frees removed segments nobody attaches any more.
fn sweep_shm(k: &mut Kernel) {
    let mem = k.mem.clone();
    let gone: Vec<i32> = k
        .ipc
        .shms
        .iter_mut()
        .filter(|(_, o)| o.perm.mode & SHM_DEST != 0 && nattch(&mem, &o.data) == 0)
        .map(|(id, _)| id)
        .collect();
    for id in gone {
        if let Some(o) = k.ipc.shms.remove(id) {
            for f in o.data.frames {
                mem.free_page(f);
            }
        }
    }
}

/// Pages all segments may have together: Linux's SHMALL, but at most half the memory file
/// (a segment's pages are allocated when it is created, and stay until it is removed).
fn shmall(mem: &crate::memfile::MemoryFile) -> u64 {
    SHMALL.min(mem.size() / PAGE_SIZE / 2)
}

/// How many attaches a segment has: its first frame's owners other than itself.
fn nattch(mem: &crate::memfile::MemoryFile, seg: &ShmSeg) -> u64 {
    seg.frames
        .first()
        .map_or(0, |&f| u64::from(mem.owners(f)) - 1)
}

/// Process `pid` ended: its semaphore adjustments are undone (and waiters woken), and
/// segments removed while it had them attached may go.
pub fn exit_process(k: &mut Kernel, pid: u32) {
    for id in k.ipc.exit_process(pid) {
        wake_all(k, KIND_SEM, id);
    }
    if !k.ipc.shms.is_empty() {
        sweep_shm(k);
    }
}

// ---- semaphores ----

/// `semget(key, nsems, semflg)`.
pub fn semget<P: Platform>(k: &mut Kernel, _t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (key, nsems, flg) = (a[0] as i32, a[1] as i32, a[2] as i32);
    if !(0..=SEMMSL).contains(&nsems) {
        return Err(EINVAL);
    }
    let in_use = k.ipc.sems_in_use();
    let now = now_s(k);
    let id = k.ipc.sems.get_or_create(
        key,
        flg,
        cred(),
        now,
        || {
            if nsems == 0 {
                return Err(EINVAL);
            }
            if in_use + nsems as u64 > SEMMNS {
                return Err(ENOSPC);
            }
            Ok(SemSet {
                sems: alloc::vec![Sem::default(); nsems as usize],
                otime: 0,
            })
        },
        |s| {
            if nsems as usize > s.sems.len() {
                Err(EINVAL)
            } else {
                Ok(())
            }
        },
    )?;
    Ok(id as u64)
}

/// `semop(semid, sops, nsops)`.
pub fn semop<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    semtimedop(k, t, [a[0], a[1], a[2], 0, 0, 0])
}

/// `semtimedop(semid, sops, nsops, timeout)`.
pub fn semtimedop<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let id = a[0] as i32;
    waiting_call(k, t, KIND_SEM, id, |k, t| semtimedop_try(k, t, a))
}

fn semtimedop_try<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [id, sops, nsops, timeout, ..] = a;
    let (id, nsops) = (id as i32, nsops as u32);
    if timeout != 0 {
        // (The timespec is read before anything else is looked at.)
        let _: crate::linux::Timespec = t.mm.lock().read_obj(timeout)?;
    }
    if nsops < 1 || id < 0 {
        return Err(EINVAL);
    }
    if nsops > SEMOPM {
        return Err(E2BIG);
    }
    let ops: Vec<Sembuf> = t.mm.lock().read_objs(sops, nsops as usize)?;
    let timeout = super::io::read_timespec(t, timeout, false)?;
    let max = ops.iter().map(|o| o.num).max().unwrap_or(0);
    let undos = ops.iter().any(|o| o.flg & SEM_UNDO != 0);
    let alter = ops.iter().any(|o| o.op != 0);
    let pid = t.pid;
    let now = now_s(k);
    let ipc = &mut k.ipc;
    let set = ipc.sems.get(id)?;
    let nsems = set.data.sems.len();
    if usize::from(max) >= nsems {
        return Err(EFBIG);
    }
    set.perm.check(cred(), if alter { WRITE } else { READ })?;
    let mut adj = if undos {
        ipc.undo
            .get(&(pid, id))
            .cloned()
            .unwrap_or_else(|| alloc::vec![0; nsems])
    } else {
        alloc::vec![0; nsems]
    };
    let set = ipc.sems.get(id)?;
    match set.data.apply(&ops, &mut adj, pid)? {
        SemOutcome::Done => {
            set.data.otime = now;
            if undos {
                ipc.undo.insert((pid, id), adj);
            }
            if alter {
                wake_all(k, KIND_SEM, id);
            }
            Ok(0)
        }
        SemOutcome::Block { blocking } => {
            if timed_out(k, t, timeout) {
                return Err(EAGAIN);
            }
            let op = ops[blocking];
            queue(
                k,
                t,
                Wait {
                    kind: KIND_SEM,
                    id,
                    sem: Some((op.num, op.op == 0)),
                },
            )
        }
    }
}

/// `semctl(semid, semnum, cmd, arg)`.
pub fn semctl<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (id, num, cmd, arg) = (a[0] as i32, a[1] as i32, a[2] as i32, a[3]);
    if id < 0 {
        return Err(EINVAL);
    }
    let now = now_s(k);
    let pid = t.pid;
    match cmd {
        IPC_INFO | SEM_INFO => {
            let mut info = Seminfo {
                semmap: SEMMNS as i32,
                semmni: SEMMNI as i32,
                semmns: SEMMNS.min(i32::MAX as u64) as i32,
                semmnu: SEMMNS.min(i32::MAX as u64) as i32,
                semmsl: SEMMSL,
                semopm: SEMOPM as i32,
                semume: SEMOPM as i32,
                semusz: 20,
                semvmx: SEMVMX,
                semaem: SEMAEM,
            };
            if cmd == SEM_INFO {
                info.semusz = k.ipc.sems.len() as i32;
                info.semaem = k.ipc.sems_in_use() as i32;
            }
            t.mm.lock().write_obj(arg, &info)?;
            Ok(u64::from(k.ipc.sems.max_idx()))
        }
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            let (id, set) = stat_target(&mut k.ipc.sems, cmd, id, SEM_STAT_ANY)?;
            let ds = SemidDs {
                perm: (&set.perm).into(),
                otime: set.data.otime,
                ctime: set.ctime,
                nsems: set.data.sems.len() as u64,
                ..Default::default()
            };
            t.mm.lock().write_obj(arg, &ds)?;
            Ok(if cmd == IPC_STAT { 0 } else { id as u64 })
        }
        GETVAL | GETPID | GETNCNT | GETZCNT | GETALL | SETALL => {
            let set = k.ipc.sems.get(id)?;
            set.perm
                .check(cred(), if cmd == SETALL { WRITE } else { READ })?;
            let nsems = set.data.sems.len();
            if cmd == GETALL {
                let vals: Vec<u16> = set.data.sems.iter().map(|s| s.val).collect();
                t.mm.lock().write_obj(arg, vals.as_slice())?;
                return Ok(0);
            }
            if cmd == SETALL {
                let vals: Vec<u16> = t.mm.lock().read_objs(arg, nsems)?;
                if vals.iter().any(|&v| i32::from(v) > SEMVMX) {
                    return Err(ERANGE);
                }
                for (s, v) in set.data.sems.iter_mut().zip(vals) {
                    *s = Sem { val: v, pid };
                }
                set.ctime = now;
                k.ipc.clear_undo(id, None);
                wake_all(k, KIND_SEM, id);
                return Ok(0);
            }
            let n = usize::try_from(num)
                .ok()
                .filter(|&n| n < nsems)
                .ok_or(EINVAL)?;
            let sem = set.data.sems[n];
            match cmd {
                GETVAL => Ok(u64::from(sem.val)),
                GETPID => Ok(u64::from(sem.pid)),
                _ => {
                    let zero = cmd == GETZCNT;
                    let futex = &k.futex;
                    let count = k
                        .ipc
                        .waits
                        .iter()
                        .filter(|(&tid, w)| {
                            w.kind == KIND_SEM
                                && w.id == id
                                && w.sem == Some((n as u16, zero))
                                && futex.is_waiting_or_retrying(tid)
                        })
                        .count();
                    Ok(count as u64)
                }
            }
        }
        SETVAL => {
            let val = arg as i32;
            if !(0..=SEMVMX).contains(&val) {
                return Err(ERANGE);
            }
            let set = k.ipc.sems.get(id)?;
            let n = usize::try_from(num)
                .ok()
                .filter(|&n| n < set.data.sems.len())
                .ok_or(EINVAL)?;
            set.perm.check(cred(), WRITE)?;
            set.data.sems[n] = Sem {
                val: val as u16,
                pid,
            };
            set.ctime = now;
            k.ipc.clear_undo(id, Some(n));
            wake_all(k, KIND_SEM, id);
            Ok(0)
        }
        IPC_SET => {
            let ds: SemidDs = t.mm.lock().read_obj(arg)?;
            let set = k.ipc.sems.get(id)?;
            set.perm.check_owner(cred())?;
            set.perm.set(ds.perm.uid, ds.perm.gid, ds.perm.mode);
            set.ctime = now;
            Ok(0)
        }
        IPC_RMID => {
            k.ipc.sems.get(id)?.perm.check_owner(cred())?;
            k.ipc.sems.remove(id);
            k.ipc.forget_undo(id);
            wake_all(k, KIND_SEM, id);
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

// ---- message queues ----

/// `msgget(key, msgflg)`.
pub fn msgget<P: Platform>(k: &mut Kernel, _t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (key, flg) = (a[0] as i32, a[1] as i32);
    let now = now_s(k);
    let id = k.ipc.msgs.get_or_create(
        key,
        flg,
        cred(),
        now,
        || Ok(MsgQueue::default()),
        |_| Ok(()),
    )?;
    Ok(id as u64)
}

/// `msgsnd(msqid, msgp, msgsz, msgflg)`.
pub fn msgsnd<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let id = a[0] as i32;
    waiting_call(k, t, KIND_MSG, id, |k, t| msgsnd_try(k, t, a))
}

fn msgsnd_try<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (id, msgp, msgsz, flg) = (a[0] as i32, a[1], a[2], a[3] as i32);
    let mtype: i64 = t.mm.lock().read_obj(msgp)?;
    if msgsz > MSGMAX || id < 0 {
        return Err(EINVAL);
    }
    if mtype < 1 {
        return Err(EINVAL);
    }
    let mut text = alloc::vec![0u8; msgsz as usize];
    t.mm.lock().copy_in(msgp.wrapping_add(8), &mut text)?;
    let now = now_s(k);
    let total = k.ipc.msg_bytes();
    let q = k.ipc.msgs.get(id)?;
    q.perm.check(cred(), WRITE)?;
    if q.data.fits(msgsz) && total + msgsz + MSG_OVERHEAD > MSG_TOTAL_MAX {
        return Err(ENOMEM);
    }
    if !q.data.fits(msgsz) {
        if flg & IPC_NOWAIT != 0 {
            return Err(EAGAIN);
        }
        return queue(
            k,
            t,
            Wait {
                kind: KIND_MSG,
                id,
                sem: None,
            },
        );
    }
    q.data.push(Msg { mtype, text });
    q.data.lspid = t.pid;
    q.data.stime = now;
    wake_all(k, KIND_MSG, id);
    Ok(0)
}

/// `msgrcv(msqid, msgp, msgsz, msgtyp, msgflg)`.
pub fn msgrcv<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let id = a[0] as i32;
    waiting_call(k, t, KIND_MSG, id, |k, t| msgrcv_try(k, t, a))
}

fn msgrcv_try<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (id, msgp, msgsz, msgtyp, flg) = (a[0] as i32, a[1], a[2] as i64, a[3] as i64, a[4] as i32);
    if id < 0 || msgsz < 0 {
        return Err(EINVAL);
    }
    let copy = flg & MSG_COPY != 0;
    if copy && (flg & MSG_EXCEPT != 0 || flg & IPC_NOWAIT == 0) {
        return Err(EINVAL);
    }
    let now = now_s(k);
    let q = k.ipc.msgs.get(id)?;
    q.perm.check(cred(), READ)?;
    let found = if copy {
        usize::try_from(msgtyp)
            .ok()
            .filter(|&i| i < q.data.msgs.len())
    } else {
        q.data.find(msgtyp, flg)
    };
    let Some(i) = found else {
        if flg & IPC_NOWAIT != 0 {
            return Err(ENOMSG);
        }
        return queue(
            k,
            t,
            Wait {
                kind: KIND_MSG,
                id,
                sem: None,
            },
        );
    };
    let msg = &q.data.msgs[i];
    if (msg.text.len() as u64) > msgsz as u64 && flg & MSG_NOERROR == 0 {
        return Err(E2BIG);
    }
    let n = msg.text.len().min(msgsz as usize);
    // The message leaves the queue before it is copied out: a bad buffer loses it (EFAULT),
    // as on Linux.
    let msg = if copy {
        msg.clone()
    } else {
        let msg = q.data.take(i).ok_or(EINVAL)?;
        q.data.lrpid = t.pid;
        q.data.rtime = now;
        wake_all(k, KIND_MSG, id);
        msg
    };
    let mut mm = t.mm.lock();
    mm.write_obj(msgp, &msg.mtype)?;
    mm.copy_out(msgp.wrapping_add(8), &msg.text[..n])?;
    Ok(n as u64)
}

/// `msgctl(msqid, cmd, buf)`.
pub fn msgctl<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (id, cmd, buf) = (a[0] as i32, a[1] as i32, a[2]);
    if id < 0 {
        return Err(EINVAL);
    }
    let now = now_s(k);
    match cmd {
        IPC_INFO | MSG_INFO => {
            let mut info = Msginfo {
                msgpool: (MSGMNI as u64 * MSGMNB / 1024) as i32,
                msgmap: MSGMNB as i32,
                msgmax: MSGMAX as i32,
                msgmnb: MSGMNB as i32,
                msgmni: MSGMNI as i32,
                msgssz: 16,
                msgtql: MSGMNB as i32,
                msgseg: 0xffff,
                pad: 0,
            };
            if cmd == MSG_INFO {
                let (mut n, mut bytes) = (0u64, 0u64);
                for (_, q) in k.ipc.msgs.iter_mut() {
                    n += q.data.msgs.len() as u64;
                    bytes += q.data.cbytes;
                }
                info.msgpool = k.ipc.msgs.len() as i32;
                info.msgmap = n as i32;
                info.msgtql = bytes as i32;
            }
            t.mm.lock().write_obj(buf, &info)?;
            Ok(u64::from(k.ipc.msgs.max_idx()))
        }
        IPC_STAT | MSG_STAT | MSG_STAT_ANY => {
            let (id, q) = stat_target(&mut k.ipc.msgs, cmd, id, MSG_STAT_ANY)?;
            let ds = MsqidDs {
                perm: (&q.perm).into(),
                stime: q.data.stime,
                rtime: q.data.rtime,
                ctime: q.ctime,
                cbytes: q.data.cbytes,
                qnum: q.data.msgs.len() as u64,
                qbytes: q.data.qbytes,
                lspid: q.data.lspid as i32,
                lrpid: q.data.lrpid as i32,
                ..Default::default()
            };
            t.mm.lock().write_obj(buf, &ds)?;
            Ok(if cmd == IPC_STAT { 0 } else { id as u64 })
        }
        IPC_SET => {
            let ds: MsqidDs = t.mm.lock().read_obj(buf)?;
            let q = k.ipc.msgs.get(id)?;
            q.perm.check_owner(cred())?;
            if ds.qbytes > MSGMNB && !cred().privileged() {
                return Err(EPERM);
            }
            q.data.qbytes = ds.qbytes;
            q.perm.set(ds.perm.uid, ds.perm.gid, ds.perm.mode);
            q.ctime = now;
            wake_all(k, KIND_MSG, id);
            Ok(0)
        }
        IPC_RMID => {
            k.ipc.msgs.get(id)?.perm.check_owner(cred())?;
            k.ipc.msgs.remove(id);
            wake_all(k, KIND_MSG, id);
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

// ---- shared memory ----

/// `shmget(key, size, shmflg)`.
pub fn shmget<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (key, size, flg) = (a[0] as i32, a[1], a[2] as i32);
    sweep_shm(k);
    let now = now_s(k);
    let mem = k.mem.clone();
    let pid = t.pid;
    let tot: u64 = k
        .ipc
        .shms
        .iter_mut()
        .map(|(_, o)| o.data.frames.len() as u64)
        .sum();
    let id = k.ipc.shms.get_or_create(
        key,
        flg,
        cred(),
        now,
        || {
            if !(SHMMIN..=SHMMAX).contains(&size) {
                return Err(EINVAL);
            }
            let pages = size.div_ceil(PAGE_SIZE);
            if tot.checked_add(pages).is_none_or(|n| n > shmall(&mem)) {
                return Err(ENOSPC);
            }
            let mut frames = Vec::with_capacity(pages as usize);
            for _ in 0..pages {
                match mem.alloc_page() {
                    Ok(f) => frames.push(f),
                    Err(_) => {
                        for f in frames {
                            mem.free_page(f);
                        }
                        return Err(ENOMEM);
                    }
                }
            }
            Ok(ShmSeg {
                size,
                frames,
                atime: 0,
                dtime: 0,
                cpid: pid,
                lpid: 0,
            })
        },
        |s| if s.size < size { Err(EINVAL) } else { Ok(()) },
    )?;
    Ok(id as u64)
}

/// `shmat(shmid, shmaddr, shmflg)`.
pub fn shmat<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (id, mut addr, flg) = (a[0] as i32, a[1], a[2] as i32);
    if id < 0 {
        return Err(EINVAL);
    }
    if addr != 0 {
        if addr & (SHMLBA - 1) != 0 {
            if flg & SHM_RND == 0 {
                return Err(EINVAL);
            }
            addr &= !(SHMLBA - 1);
            if addr == 0 && flg & SHM_REMAP != 0 {
                return Err(EINVAL);
            }
        }
    } else if flg & SHM_REMAP != 0 {
        return Err(EINVAL);
    }
    let (access, want) = if flg & SHM_RDONLY != 0 {
        (
            Access {
                read: true,
                write: false,
                execute: false,
            },
            READ,
        )
    } else {
        (
            Access {
                read: true,
                write: true,
                execute: false,
            },
            READ_WRITE,
        )
    };
    let (access, want) = if flg & SHM_EXEC != 0 {
        (
            Access {
                execute: true,
                ..access
            },
            want | 0o111,
        )
    } else {
        (access, want)
    };
    let now = now_s(k);
    let seg = k.ipc.shms.get(id)?;
    seg.perm.check(cred(), want)?;
    let len = seg.data.frames.len() as u64 * PAGE_SIZE;
    let at = {
        let mut mm = t.mm.lock();
        if addr != 0 && flg & SHM_REMAP != 0 {
            mm.munmap(addr, len)?;
        }
        mm.map_frames((addr != 0).then_some(addr), &seg.data.frames, access)?
    };
    seg.data.atime = now;
    seg.data.lpid = t.pid;
    Ok(at)
}

/// `shmdt(shmaddr)`.
pub fn shmdt<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let addr = a[0];
    if addr & (PAGE_SIZE - 1) != 0 {
        return Err(EINVAL);
    }
    let now = now_s(k);
    let frame = t.mm.lock().frame_at(addr).ok_or(EINVAL)?;
    let (_, seg) = k
        .ipc
        .shms
        .iter_mut()
        .find(|(_, o)| o.data.frames.first() == Some(&frame))
        .ok_or(EINVAL)?;
    let len = seg.data.frames.len() as u64 * PAGE_SIZE;
    // Only the pages that are still this segment's go.
    let frames = seg.data.frames.clone();
    seg.data.dtime = now;
    seg.data.lpid = t.pid;
    {
        let mut mm = t.mm.lock();
        let mut va = addr;
        while va < addr + len {
            let i = ((va - addr) / PAGE_SIZE) as usize;
            if mm.frame_at(va) == Some(frames[i]) {
                mm.munmap(va, PAGE_SIZE)?;
            }
            va += PAGE_SIZE;
        }
    }
    sweep_shm(k);
    Ok(0)
}

/// `shmctl(shmid, cmd, buf)`.
pub fn shmctl<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (id, cmd, buf) = (a[0] as i32, a[1] as i32, a[2]);
    if id < 0 {
        return Err(EINVAL);
    }
    sweep_shm(k);
    let now = now_s(k);
    let mem = k.mem.clone();
    match cmd {
        IPC_INFO => {
            let info = Shminfo64 {
                shmmax: SHMMAX,
                shmmin: SHMMIN,
                shmmni: SHMMNI as u64,
                shmseg: SHMMNI as u64,
                shmall: shmall(&k.mem),
                unused: [0; 4],
            };
            t.mm.lock().write_obj(buf, &info)?;
            Ok(u64::from(k.ipc.shms.max_idx()))
        }
        SHM_INFO => {
            let tot: u64 = k
                .ipc
                .shms
                .iter_mut()
                .map(|(_, o)| o.data.frames.len() as u64)
                .sum();
            let info = ShmInfo {
                used_ids: k.ipc.shms.len() as i32,
                shm_tot: tot,
                shm_rss: tot,
                ..Default::default()
            };
            t.mm.lock().write_obj(buf, &info)?;
            Ok(u64::from(k.ipc.shms.max_idx()))
        }
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => {
            let (id, seg) = stat_target(&mut k.ipc.shms, cmd, id, SHM_STAT_ANY)?;
            let ds = ShmidDs {
                perm: (&seg.perm).into(),
                segsz: seg.data.size,
                atime: seg.data.atime,
                dtime: seg.data.dtime,
                ctime: seg.ctime,
                cpid: seg.data.cpid as i32,
                lpid: seg.data.lpid as i32,
                nattch: nattch(&mem, &seg.data),
                ..Default::default()
            };
            t.mm.lock().write_obj(buf, &ds)?;
            Ok(if cmd == IPC_STAT { 0 } else { id as u64 })
        }
        SHM_LOCK | SHM_UNLOCK => {
            let seg = k.ipc.shms.get(id)?;
            if !cred().privileged() {
                seg.perm.check_owner(cred())?;
            }
            if cmd == SHM_LOCK {
                seg.perm.mode |= SHM_LOCKED;
            } else {
                seg.perm.mode &= !SHM_LOCKED;
            }
            Ok(0)
        }
        IPC_SET => {
            let ds: ShmidDs = t.mm.lock().read_obj(buf)?;
            let seg = k.ipc.shms.get(id)?;
            seg.perm.check_owner(cred())?;
            seg.perm.set(ds.perm.uid, ds.perm.gid, ds.perm.mode);
            seg.ctime = now;
            Ok(0)
        }
        IPC_RMID => {
            let seg = k.ipc.shms.get(id)?;
            seg.perm.check_owner(cred())?;
            seg.perm.mode |= SHM_DEST;
            seg.perm.key = IPC_PRIVATE;
            sweep_shm(k);
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use linux_raw_sys::general as g;

    use crate::kernel::Config;
    use crate::sched::Request;
    use crate::testing::{FakeHost, Harness};

    fn errno(e: u32) -> i64 {
        -i64::from(e)
    }

    fn sembuf(num: u16, op: i16, flg: i16) -> [u8; 6] {
        let mut b = [0u8; 6];
        b[..2].copy_from_slice(&num.to_ne_bytes());
        b[2..4].copy_from_slice(&op.to_ne_bytes());
        b[4..].copy_from_slice(&flg.to_ne_bytes());
        b
    }

    #[test]
    fn semop_queues_and_rmid_makes_the_retry_eidrm() {
        let mut h = Harness::new(FakeHost::with_files(&[]), Config::default());
        let id = h.call(g::__NR_semget, &[0, 1, 0o600]);
        assert!(id >= 0);
        let id = id as u64;
        let down = h.put(&sembuf(0, -1, 0));
        let nowait = h.put(&sembuf(0, -1, 0o4000));
        assert_eq!(
            h.call(g::__NR_semop, &[id, nowait, 1]),
            errno(linux_raw_sys::errno::EAGAIN)
        );
        assert_eq!(
            h.call(g::__NR_semop, &[id, 8, 1]),
            errno(linux_raw_sys::errno::EFAULT)
        );
        // A wait: queued on the set's wait queue.
        assert_eq!(h.call(g::__NR_semop, &[id, down, 1]), 0);
        assert!(matches!(h.task.request.take(), Some(Request::Queue)));
        assert!(h.kernel.futex.is_waiting(h.task.tid));
        assert_eq!(h.call(g::__NR_semctl, &[id, 0, 14, 0]), 1, "GETNCNT");
        // The set goes (as another process would remove it): the wake makes the call again.
        h.kernel.ipc.sems.remove(id as i32);
        h.kernel.futex.wake(
            crate::futex::Key::Ipc {
                kind: crate::ipc::KIND_SEM,
                id: id as i32,
            },
            u32::MAX,
            u32::MAX,
        );
        assert_eq!(h.kernel.futex.take_retried(), [h.task.tid]);
        assert_eq!(
            h.call(g::__NR_semop, &[id, down, 1]),
            errno(linux_raw_sys::errno::EIDRM)
        );
        // A fresh call on the removed id: EINVAL.
        assert_eq!(
            h.call(g::__NR_semop, &[id, down, 1]),
            errno(linux_raw_sys::errno::EINVAL)
        );
    }

    #[test]
    fn queued_messages_are_bounded_sentry_wide() {
        let mut h = Harness::new(FakeHost::with_files(&[]), Config::default());
        let mut msg = 1i64.to_ne_bytes().to_vec();
        msg.resize(8 + 8192, 7);
        let m = h.put(&msg);
        let mut sent = 0u64;
        let last = loop {
            let q = h.call(g::__NR_msgget, &[0, 0o600]) as u64;
            let r = h.call(g::__NR_msgsnd, &[q, m, 8192, 0o4000]);
            if r != 0 {
                break r;
            }
            sent += 1;
            assert!(sent < 10_000, "no bound");
        };
        assert_eq!(last, errno(linux_raw_sys::errno::ENOMEM));
        assert_eq!(
            sent,
            crate::ipc::MSG_TOTAL_MAX / (8192 + crate::ipc::MSG_OVERHEAD)
        );
    }

    #[test]
    fn messages_and_segments_round_trip() {
        let mut h = Harness::new(FakeHost::with_files(&[]), Config::default());
        let q = h.call(g::__NR_msgget, &[0, 0o600]) as u64;
        let mut msg = 7i64.to_ne_bytes().to_vec();
        msg.extend_from_slice(b"hi there");
        let m = h.put(&msg);
        assert_eq!(h.call(g::__NR_msgsnd, &[q, m, 8, 0]), 0);
        let out = h.put(&[0; 24]);
        assert_eq!(
            h.call(g::__NR_msgrcv, &[q, out, 2, 0, 0]),
            errno(linux_raw_sys::errno::E2BIG)
        );
        assert_eq!(h.call(g::__NR_msgrcv, &[q, out, 16, 7, 0]), 8);
        assert_eq!(h.get(out + 8, 8), b"hi there");
        assert_eq!(
            h.call(g::__NR_msgrcv, &[q, out, 16, 0, 0o4000]),
            errno(linux_raw_sys::errno::ENOMSG)
        );
        let shm = h.call(g::__NR_shmget, &[0, 100, 0o600]) as u64;
        let a = h.call(g::__NR_shmat, &[shm, 0, 0]) as u64;
        let b = h.call(g::__NR_shmat, &[shm, 0, 0]) as u64;
        assert_ne!(a, b);
        let data = h.put(b"shared");
        let mut buf = [0u8; 6];
        h.task.mm.lock().copy_in(data, &mut buf).unwrap();
        h.task.mm.lock().copy_out(a, &buf).unwrap();
        assert_eq!(h.get(b, 6), b"shared", "two attaches, one segment");
        let ds = h.put(&[0; 112]);
        assert_eq!(h.call(g::__NR_shmctl, &[shm, 2, ds]), 0);
        let nattch = u64::from_ne_bytes(h.get(ds + 88, 8).try_into().unwrap());
        assert_eq!(nattch, 2);
        assert_eq!(
            h.call(g::__NR_shmdt, &[a + 1]),
            errno(linux_raw_sys::errno::EINVAL)
        );
        assert_eq!(h.call(g::__NR_shmdt, &[a]), 0);
        assert_eq!(h.call(g::__NR_shmctl, &[shm, 0, 0]), 0, "IPC_RMID");
        assert_eq!(
            h.call(g::__NR_shmctl, &[shm, 2, ds]),
            0,
            "still attached once"
        );
        let in_use = h.kernel.mem.pages_in_use();
        assert_eq!(h.call(g::__NR_shmdt, &[b]), 0);
        assert_eq!(
            h.call(g::__NR_shmctl, &[shm, 2, ds]),
            errno(linux_raw_sys::errno::EINVAL)
        );
        assert!(h.kernel.mem.pages_in_use() < in_use, "the frame was freed");
    }
}
