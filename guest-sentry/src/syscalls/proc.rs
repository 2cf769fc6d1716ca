//! Process syscalls: exit, identity, `uname`, `arch_prctl`, limits, signal dispositions.

use alloc::vec::Vec;
use core::mem::size_of;

use crate::errno::{SysResult, EFAULT, EINVAL, EPERM, ESRCH};
use crate::host::ExitStatus;
use crate::kernel::{Hostname, Kernel, Rlimit, Task, RLIM_NLIMITS};
use crate::linux::{Rusage, StackT, Sysinfo, Utsname};
use crate::platform::Platform;
use crate::sched::{
    CloneArgs, Exec, Request, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_DETACHED,
    CLONE_FILES, CLONE_FS, CLONE_IO, CLONE_PARENT, CLONE_PARENT_SETTID, CLONE_PIDFD, CLONE_PTRACE,
    CLONE_SETTLS, CLONE_SIGHAND, CLONE_SYSVSEM, CLONE_THREAD, CLONE_UNTRACED, CLONE_VFORK,
    CLONE_VM,
};

/// The first address above the app's range (`arch_prctl`, `CLONE_SETTLS` refuse more).
const TASK_SIZE_MAX: u64 = 0x7fff_ffff_f000;
use crate::signal::{self, SigAction, NSIG, SS_DISABLE, SS_ONSTACK, UNBLOCKABLE};

/// `exit(code)`: this thread ends (the process with its last thread).
pub fn exit<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    t.exit = Some(ExitStatus {
        code: (a[0] & 0xff) as i32,
        signal: 0,
    });
    Ok(0)
}

/// `exit_group(code)`: every thread of the process ends.
pub fn exit_group<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    signal::exit_group(
        t,
        ExitStatus {
            code: (a[0] & 0xff) as i32,
            signal: 0,
        },
    );
    Ok(0)
}

pub fn uname<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let fields: [&[u8]; 6] = [
        b"Linux",
        k.config.hostname.as_bytes(),
        b"6.1.0",
        b"#1 SMP vmm sandbox",
        b"x86_64",
        k.domainname
            .as_ref()
            .map_or(&b"(none)"[..], |d| d.as_bytes()),
    ];
    let [sysname, nodename, release, version, machine, domainname] = fields.map(|f| {
        let mut field = [0u8; 65];
        field[..f.len()].copy_from_slice(f);
        field
    });
    let uts = Utsname {
        sysname,
        nodename,
        release,
        version,
        machine,
        domainname,
    };
    t.mm.lock().write_obj(a[0], &uts)?;
    Ok(0)
}

/// `sethostname(name, len)` and (`domain`) `setdomainname`: the sandbox's own UTS names
/// (its root holds CAP_SYS_ADMIN in its namespace; the host's names never change).
pub fn set_uts_name<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    a: [u64; 6],
    domain: bool,
) -> SysResult {
    let len = a[1] as i64;
    if !(0..=Hostname::MAX as i64).contains(&len) {
        return Err(crate::errno::EINVAL);
    }
    let mut buf = alloc::vec![0u8; len as usize];
    t.mm.lock().copy_in(a[0], &mut buf)?;
    let name = Hostname::from_app(&buf).ok_or(crate::errno::EINVAL)?;
    if domain {
        k.domainname = Some(name);
    } else {
        k.config.hostname = name;
    }
    Ok(0)
}

pub fn arch_prctl<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const ARCH_SET_GS: u64 = 0x1001;
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    const ARCH_GET_GS: u64 = 0x1004;
    match a[0] {
        ARCH_SET_FS | ARCH_SET_GS if a[1] >= TASK_SIZE_MAX => Err(EPERM),
        ARCH_SET_FS => {
            t.regs.fs_base = a[1];
            Ok(0)
        }
        ARCH_SET_GS => {
            t.regs.gs_base = a[1];
            Ok(0)
        }
        ARCH_GET_FS => t.mm.lock().write_obj(a[1], &t.regs.fs_base).map(|_| 0),
        ARCH_GET_GS => t.mm.lock().write_obj(a[1], &t.regs.gs_base).map(|_| 0),
        _ => Err(EINVAL),
    }
}

pub fn set_robust_list<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const ROBUST_LIST_HEAD_SIZE: u64 = 24;
    if a[1] != ROBUST_LIST_HEAD_SIZE {
        return Err(EINVAL);
    }
    t.robust_list = (a[0], a[1]);
    Ok(0)
}

/// `get_robust_list(pid, head, len)`: the caller's (pid 0 or its own tid); another thread's
/// would need the scheduler (EPERM, as for a process without ptrace rights over it).
pub fn get_robust_list<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    if pid != 0 && pid as u32 != t.tid {
        return Err(if pid < 0 { ESRCH } else { EPERM });
    }
    let (head, len) = t.robust_list;
    t.mm.lock().write_obj(a[1], &head)?;
    t.mm.lock().write_obj(a[2], &len)?;
    Ok(0)
}

/// The `set*id` family: the sandbox's program runs as root of its own world and keeps
/// those ids; asking for root (0) or for no change (-1) succeeds, any other id is refused
/// with EPERM (other credentials are not modelled yet) and logged once.
pub fn set_ids<P: Platform>(k: &mut Kernel, _t: &mut Task<P>, ids: [u64; 3]) -> SysResult {
    if ids
        .iter()
        .all(|&id| id as u32 == 0 || id as u32 == u32::MAX)
    {
        return Ok(0);
    }
    if k.unknown_logged.first_time(u64::MAX - 0x1_0000) == crate::kernel::LogVerdict::Log {
        k.log(format_args!(
            "set*id to ids other than root ({ids:?}): not supported (EPERM)"
        ));
    }
    Err(EPERM)
}

/// `getresuid`/`getresgid(real, effective, saved)`: root's.
pub fn get_ids<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, ptrs: [u64; 3]) -> SysResult {
    for p in ptrs {
        t.mm.lock().write_obj(p, &crate::kernel::SANDBOX_IDS[0])?;
    }
    Ok(0)
}

/// `setgroups(size, list)`: the supplementary groups are none; setting none (or only root's
/// group) succeeds.
pub fn setgroups<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let n = a[0];
    if n > 65536 {
        return Err(EINVAL);
    }
    let groups: Vec<u32> = t.mm.lock().read_objs(a[1], n as usize)?;
    if groups.iter().all(|&g| g == crate::kernel::SANDBOX_IDS[2]) {
        Ok(0)
    } else {
        Err(EPERM)
    }
}

/// `prlimit64(pid, resource, new, old)`; `getrlimit`/`setrlimit` arrive here too.
pub fn prlimit64<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [pid, resource, new, old, ..] = a;
    if pid != 0 && pid != t.pid as u64 {
        return Err(ESRCH);
    }
    let r = resource as usize;
    if r >= RLIM_NLIMITS {
        return Err(EINVAL);
    }
    let new_limit = if new != 0 {
        let l: Rlimit = t.mm.lock().read_obj(new)?;
        if l.cur > l.max {
            return Err(EINVAL);
        }
        Some(l)
    } else {
        None
    };
    if old != 0 {
        let cur = t.tg.get().rlimits[r];
        t.mm.lock().write_obj(old, &cur)?;
    }
    if let Some(l) = new_limit {
        t.tg.lock().rlimits[r] = l;
    }
    Ok(0)
}

pub fn rt_sigaction<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [sig, act, oact, size, ..] = a;
    if size != 8 || sig == 0 || sig > NSIG as u64 {
        return Err(EINVAL);
    }
    let sig = sig as i32;
    if act != 0 && UNBLOCKABLE & signal::bit(sig) != 0 {
        return Err(EINVAL);
    }
    let new = if act != 0 {
        let n: SigAction = t.mm.lock().read_obj(act)?;
        Some(SigAction {
            mask: n.mask & !UNBLOCKABLE,
            ..n
        })
    } else {
        None
    };
    let slot = (sig - 1) as usize;
    if oact != 0 {
        t.mm.lock()
            .write_obj(oact, &t.sighand.lock()[slot])
            .map_err(|_| EFAULT)?;
    }
    if let Some(n) = new {
        t.sighand.lock()[slot] = n;
        signal::discard_ignored(t, Some(sig));
    }
    Ok(0)
}

pub fn rt_sigprocmask<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const SIG_BLOCK: u64 = 0;
    const SIG_UNBLOCK: u64 = 1;
    const SIG_SETMASK: u64 = 2;
    let [how, set, oset, size, ..] = a;
    if size != 8 {
        return Err(EINVAL);
    }
    let old = t.signals.blocked;
    let new = if set != 0 {
        let s = t.mm.lock().read_u64(set)?;
        Some(match how {
            SIG_BLOCK => old | s,
            SIG_UNBLOCK => old & !s,
            SIG_SETMASK => s,
            _ => return Err(EINVAL),
        })
    } else {
        None
    };
    if oset != 0 {
        t.mm.lock().write_obj(oset, &old)?;
    }
    if let Some(n) = new {
        t.signals.blocked = n & !UNBLOCKABLE;
        signal::discard_ignored(t, None);
    }
    Ok(0)
}

/// `prctl`: the thread name (`PR_SET_NAME`/`PR_GET_NAME`) and the no-op-safe queries.
pub fn prctl<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const PR_GET_DUMPABLE: u64 = 3;
    const PR_SET_NAME: u64 = 15;
    const PR_GET_NAME: u64 = 16;
    match a[0] {
        PR_SET_NAME => {
            let mut name = [0u8; 16];
            // Up to 15 bytes and a NUL; a fault on the part after the string does not matter.
            let s = t.mm.lock().read_cstr(a[1], 4096).or_else(|e| {
                if e == crate::errno::ENAMETOOLONG {
                    Ok(alloc::vec::Vec::new())
                } else {
                    Err(e)
                }
            })?;
            let n = s.len().min(15);
            name[..n].copy_from_slice(&s[..n]);
            t.comm = name;
            Ok(0)
        }
        PR_GET_NAME => t.mm.lock().copy_out(a[1], &t.comm).map(|_| 0),
        PR_GET_DUMPABLE => Ok(1),
        _ => Err(EINVAL),
    }
}

/// `clone(flags, stack, parent_tid, child_tid, tls)`; `fork` and `vfork` arrive here with
/// their flags.
pub fn clone<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [flags, stack, ptid, ctid, tls, _] = a;
    // The low byte is the exit signal; CLONE_PIDFD puts the pidfd where CLONE_PARENT_SETTID
    // puts the tid, so the two cannot be combined.
    if flags & CLONE_PIDFD != 0 && flags & CLONE_PARENT_SETTID != 0 {
        return Err(EINVAL);
    }
    let args = CloneArgs {
        flags: flags & !0xff,
        stack,
        tls,
        parent_tid: ptid,
        child_tid: ctid,
        exit_signal: (flags & 0xff) as i32,
        pidfd: if flags & CLONE_PIDFD != 0 { ptid } else { 0 },
    };
    start_clone(k, t, args)
}

/// `clone3(args, size)`: `struct clone_args`, of 64 bytes or more (bytes past those known
/// must be zero).
pub fn clone3<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [addr, size, ..] = a;
    const VER0: u64 = 64;
    let known = size_of::<CloneArgs3>() as u64;
    if !(VER0..=4096).contains(&size) {
        return Err(EINVAL);
    }
    let mut raw = [0u8; size_of::<CloneArgs3>()];
    let n = size.min(known) as usize;
    t.mm.lock().copy_in(addr, &mut raw[..n])?;
    if size > known {
        let mut rest = alloc::vec![0u8; (size - known) as usize];
        t.mm.lock().copy_in(addr + known, &mut rest)?;
        if rest.iter().any(|&b| b != 0) {
            return Err(crate::errno::E2BIG);
        }
    }
    let c: CloneArgs3 = zerocopy::transmute!(raw);
    if c.exit_signal > NSIG as u64
        || c.flags & 0xff != 0
        || (c.stack == 0) != (c.stack_size == 0)
        || (c.flags & (CLONE_THREAD | CLONE_PARENT) != 0 && c.exit_signal != 0)
    {
        return Err(EINVAL);
    }
    if c.set_tid != 0 || c.set_tid_size != 0 {
        // Choosing the new tid needs CAP_SYS_ADMIN over a pid namespace.
        return Err(EPERM);
    }
    if c.flags & CLONE_INTO_CGROUP != 0 {
        return Err(EINVAL);
    }
    let args = CloneArgs {
        flags: c.flags,
        // The stack is given as its lowest address and size: it starts at its top.
        stack: c.stack.wrapping_add(c.stack_size),
        tls: c.tls,
        parent_tid: c.parent_tid,
        child_tid: c.child_tid,
        exit_signal: c.exit_signal as i32,
        pidfd: if c.flags & CLONE_PIDFD != 0 {
            c.pidfd
        } else {
            0
        },
    };
    start_clone(k, t, args)
}

/// `struct clone_args` of Linux 5.7 (88 bytes).
#[derive(Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
#[repr(C)]
struct CloneArgs3 {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// The namespace flags: a sandbox has one of each (refused, as a process without the
/// capability would be).
const CLONE_NEW_ANY: u64 = 0x7e02_0080;

/// Checks `args` as Linux's `copy_process` does and asks the scheduler for the new task.
fn start_clone<P: Platform>(k: &mut Kernel, t: &mut Task<P>, args: CloneArgs) -> SysResult {
    let f = args.flags;
    let known = CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_PIDFD
        | CLONE_PTRACE
        | CLONE_VFORK
        | CLONE_PARENT
        | CLONE_THREAD
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID
        | CLONE_DETACHED
        | CLONE_UNTRACED
        | CLONE_CHILD_SETTID
        | CLONE_IO
        | CLONE_NEW_ANY;
    if f & !known != 0 {
        return Err(EINVAL);
    }
    // Threads share handlers, handlers need the memory they point into; a process cannot be
    // its own init's sibling.
    if (f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0)
        || (f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0)
        || (f & CLONE_PIDFD != 0 && f & CLONE_THREAD != 0)
        || (f & CLONE_PARENT != 0 && t.pid == 1)
    {
        return Err(EINVAL);
    }
    if f & CLONE_NEW_ANY != 0 {
        k.log(format_args!(
            "clone with namespace flags {:#x}: not supported (EPERM)",
            f & CLONE_NEW_ANY
        ));
        return Err(EPERM);
    }
    if f & CLONE_SETTLS != 0 && args.tls >= TASK_SIZE_MAX {
        return Err(EPERM);
    }
    if !(0..=NSIG as i32).contains(&args.exit_signal) {
        return Err(EINVAL);
    }
    t.request = Some(Request::Clone(args));
    Ok(0)
}

/// A NULL-terminated array of strings in app memory (argv, envp).
fn read_strings<P: Platform>(
    t: &mut Task<P>,
    addr: u64,
) -> Result<Vec<Vec<u8>>, crate::errno::Errno> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    let mut total = 0usize;
    for i in 0..0x10000u64 {
        let p = t.mm.lock().read_u64(addr + 8 * i)?;
        if p == 0 {
            return Ok(out);
        }
        let s = t.mm.lock().read_cstr(p, 128 * 1024).map_err(|e| {
            if e == crate::errno::ENAMETOOLONG {
                crate::errno::E2BIG
            } else {
                e
            }
        })?;
        total += s.len() + 1;
        if total > 2 << 20 {
            return Err(crate::errno::E2BIG);
        }
        out.push(s);
    }
    Err(crate::errno::E2BIG)
}

/// `execve(path, argv, envp)`: the new image is read here (and `#!` interpreters followed);
/// the scheduler swaps the address space.
pub fn execve<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let path = t.mm.lock().read_cstr(a[0], 4096)?;
    let argv = read_strings(t, a[1])?;
    let envp = read_strings(t, a[2])?;
    let (image, exe_path, argv) = super::fs::load_exec(k, t, &path, argv, 0)?;
    let cloexec_locks = super::locks::cloexec_keys(k, t);
    t.request = Some(Request::Exec(Exec {
        image,
        execfn: path,
        exe_path,
        argv,
        envp,
        cloexec_locks,
    }));
    Ok(0)
}

pub fn wait4<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const WNOHANG: u64 = 1;
    const WUNTRACED: u64 = 2;
    const WCONTINUED: u64 = 8;
    const WALL: u64 = 0x4000_0000;
    const WCLONE: u64 = 0x8000_0000;
    if a[2] & !(WNOHANG | WUNTRACED | WCONTINUED | WALL | WCLONE) != 0 {
        return Err(EINVAL);
    }
    if a[3] != 0 {
        t.mm.lock().write_obj(a[3], &Rusage::default())?; // not accounted yet
    }
    t.request = Some(Request::Wait {
        pid: a[0] as i32 as i64,
        status: a[1],
        options: a[2],
        info: None,
    });
    Ok(0)
}

/// `waitid(idtype, id, infop, options, rusage)`: P_ALL, P_PID, P_PGID; WEXITED, WSTOPPED,
/// WCONTINUED (at least one), WNOHANG, WNOWAIT.
pub fn waitid<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const WNOHANG: u64 = 1;
    const WSTOPPED: u64 = 2;
    const WEXITED: u64 = 4;
    const WCONTINUED: u64 = 8;
    const WNOWAIT: u64 = 0x0100_0000;
    const WALL: u64 = 0x4000_0000;
    const WCLONE: u64 = 0x8000_0000;
    const WNOTHREAD: u64 = 0x2000_0000;
    let options = a[3];
    let known = WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | WALL | WCLONE | WNOTHREAD;
    if options & !known != 0 || options & (WEXITED | WSTOPPED | WCONTINUED) == 0 {
        return Err(EINVAL);
    }
    let id = a[1] as i32 as i64;
    let pid = match a[0] {
        0 => -1,                                        // P_ALL
        1 if id > 0 => id,                              // P_PID
        2 if id == 0 => 0,                              // P_PGID: the caller's group
        2 if id > 0 => -id,                             // P_PGID
        3 => super::events::pidfd_pid(t, a[1])? as i64, // P_PIDFD
        _ => return Err(EINVAL),
    };
    if a[4] != 0 {
        t.mm.lock().write_obj(a[4], &Rusage::default())?; // not accounted yet
    }
    t.request = Some(Request::Wait {
        pid,
        status: 0,
        options,
        info: Some(a[2]),
    });
    Ok(0)
}

/// `tgkill(tgid, tid, sig)` (`a[0]` = -1 for `tkill(tid, sig)`, which names no process).
pub fn tgkill<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (tgid, tid) = (a[0] as i32, a[1] as i32);
    if tid <= 0 || (tgid <= 0 && a[0] != u64::MAX) {
        return Err(EINVAL);
    }
    t.request = Some(Request::Tkill {
        tgid: (a[0] != u64::MAX).then_some(tgid as u32),
        tid: tid as u32,
        sig: a[2] as i32,
    });
    Ok(0)
}

pub fn kill<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    t.request = Some(Request::Kill {
        pid: a[0] as i32 as i64,
        sig: a[1] as i32,
    });
    Ok(0)
}

/// `getpgid(pid)` / `getsid(pid)` (a[1] = 1).
pub fn getpgid<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    if pid < 0 {
        return Err(ESRCH);
    }
    if pid != 0 && pid as u32 != t.pid {
        t.request = Some(Request::GetPgid {
            pid: pid as u32,
            sid: a[1] == 1,
        });
        return Ok(0);
    }
    Ok(if a[1] == 1 {
        t.tg.get().sid
    } else {
        t.tg.get().pgid
    } as u64)
}

/// `setpgid(pid, pgid)`, for the caller or a child of it (a shell placing a job in its
/// group): done by the scheduler, which sees every process and group.
pub fn setpgid<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let (pid, pgid) = (a[0] as i32, a[1] as i32);
    if pid < 0 || pgid < 0 {
        return Err(EINVAL);
    }
    t.request = Some(Request::SetPgid {
        pid: if pid == 0 { t.pid } else { pid as u32 },
        pgid: pgid as u32,
    });
    Ok(0)
}

pub fn setsid<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, _a: [u64; 6]) -> SysResult {
    if t.tg.get().pgid == t.pid {
        return Err(EPERM);
    }
    let mut g = t.tg.lock();
    g.sid = t.pid;
    g.pgid = t.pid;
    // A new session has no controlling terminal.
    g.ctty = None;
    drop(g);
    Ok(t.pid as u64)
}

/// `rt_sigsuspend(mask, size)`: waits with `mask` in place until a handled signal arrives; the
/// old mask returns when the handler does. Always fails with EINTR.
pub fn rt_sigsuspend<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[1] != 8 {
        return Err(EINVAL);
    }
    let mask = t.mm.lock().read_u64(a[0])?;
    if t.signals.saved_mask.is_none() {
        t.signals.saved_mask = Some(t.signals.blocked);
    }
    t.signals.blocked = mask & !UNBLOCKABLE;
    if signal::deliverable(t).is_some() {
        return Err(crate::errno::EINTR);
    }
    t.request = Some(Request::Block);
    Ok(0)
}

/// `sigaltstack(ss, old)`.
pub fn sigaltstack<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const MINSIGSTKSZ: u64 = 2048;
    let (sp, size, on) = t.signals.altstack;
    if a[1] != 0 {
        let on_now = on && t.regs.rsp > sp && t.regs.rsp <= sp + size;
        let flags = if !on {
            SS_DISABLE
        } else if on_now {
            SS_ONSTACK
        } else {
            0
        };
        let old = StackT {
            ss_sp: sp,
            ss_flags: flags,
            ss_size: size,
            ..Default::default()
        };
        t.mm.lock().write_obj(a[1], &old)?;
    }
    if a[0] != 0 {
        let ss: StackT = t.mm.lock().read_obj(a[0])?;
        let (nsp, flags, nsize) = (ss.ss_sp, ss.ss_flags as u32, ss.ss_size);
        if on && t.regs.rsp > sp && t.regs.rsp <= sp + size {
            return Err(EPERM);
        }
        if flags & !(SS_DISABLE as u32 | 0x8000_0000) != 0 {
            return Err(EINVAL);
        }
        if flags & SS_DISABLE as u32 != 0 {
            t.signals.altstack = (0, 0, false);
        } else {
            if nsize < MINSIGSTKSZ {
                return Err(crate::errno::ENOMEM);
            }
            t.signals.altstack = (nsp, nsize, true);
        }
    }
    Ok(0)
}

/// `sysinfo`: uptime of the sandbox and its memory file as the machine's memory.
pub fn sysinfo<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let uptime = k
        .host
        .now(crate::host::Clock::Monotonic)
        .saturating_sub(k.start_ns)
        / 1_000_000_000;
    let total = k.mem.size();
    let free = total.saturating_sub(k.mem.pages_in_use() * 4096);
    let info = Sysinfo {
        uptime: uptime as i64,
        totalram: total,
        freeram: free,
        procs: 1,
        mem_unit: 1,
        ..Default::default()
    };
    t.mm.lock().write_obj(a[0], &info)?;
    Ok(0)
}

/// The CPUs the sandbox's tasks run on: one, CPU 0 (the Sentry runs one task at a time).
const CPUS: u64 = 1;

/// `sched_getaffinity(pid, size, mask)`: the mask's size in bytes (a whole number of longs).
pub fn sched_getaffinity<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [pid, size, mask, ..] = a;
    if (pid as i32) < 0 {
        return Err(ESRCH);
    }
    if size < 8 || !size.is_multiple_of(8) {
        return Err(EINVAL);
    }
    let set: u64 = (1u64 << CPUS) - 1;
    t.mm.lock().write_obj(mask, &set)?;
    Ok(8)
}

/// `sched_setaffinity(pid, size, mask)`: a mask that includes the sandbox's CPU is accepted
/// (tasks run there anyway); one that does not is EINVAL, as on Linux.
pub fn sched_setaffinity<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [pid, size, mask, ..] = a;
    if (pid as i32) < 0 {
        return Err(ESRCH);
    }
    if size == 0 {
        return Err(EINVAL);
    }
    let mut first = [0u8; 8];
    let n = size.min(8) as usize;
    t.mm.lock().copy_in(mask, &mut first[..n])?;
    if u64::from_le_bytes(first) & ((1u64 << CPUS) - 1) == 0 {
        return Err(EINVAL);
    }
    Ok(0)
}

/// Scheduling policies: every task runs under SCHED_OTHER at priority 0 (the Sentry's own
/// scheduler takes turns); SCHED_BATCH and SCHED_IDLE are accepted as the same. The real-time
/// policies are refused (EPERM), as for a process without CAP_SYS_NICE.
const SCHED_OTHER: u64 = 0;
const SCHED_FIFO: u64 = 1;
const SCHED_RR: u64 = 2;
const SCHED_BATCH: u64 = 3;
const SCHED_IDLE: u64 = 5;
const SCHED_RESET_ON_FORK: u64 = 0x4000_0000;

/// `sched_get_priority_max/min(policy)`: 0 for the policies served, 1..99 for the real-time
/// ones (Linux's range, though setting them is refused).
pub fn sched_priority_range(policy: u64) -> SysResult {
    match policy {
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok(0),
        SCHED_FIFO | SCHED_RR => Ok(1),
        _ => Err(EINVAL),
    }
}

/// `sched_getparam(pid, param)` (`set` false) / `sched_setparam(pid, param)`: priority 0.
pub fn sched_param<P: Platform>(
    _k: &mut Kernel,
    t: &mut Task<P>,
    a: [u64; 6],
    set: bool,
) -> SysResult {
    let [pid, param, ..] = a;
    if (pid as i32) < 0 || param == 0 {
        return Err(EINVAL);
    }
    if set {
        let prio: i32 = t.mm.lock().read_obj(param)?;
        return if prio == 0 { Ok(0) } else { Err(EINVAL) };
    }
    t.mm.lock().write_obj(param, &0i32)?;
    Ok(0)
}

/// `sched_setscheduler(pid, policy, param)`.
pub fn sched_setscheduler<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let [pid, policy, param, ..] = a;
    if (pid as i32) < 0 || param == 0 {
        return Err(EINVAL);
    }
    let prio: i32 = t.mm.lock().read_obj(param)?;
    match policy & !SCHED_RESET_ON_FORK {
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE if prio == 0 => Ok(0),
        SCHED_FIFO | SCHED_RR if (1..=99).contains(&prio) => Err(EPERM),
        _ => Err(EINVAL),
    }
}

/// `getpriority(which, who)` (`set` false) / `setpriority(which, who, prio)`: EINVAL for an
/// unknown `which`; a nice value outside -20..=19 is clamped, as Linux clamps it. The
/// sandbox's user may raise and lower it (it is root inside; the value changes nothing
/// outside the sandbox).
pub fn priority<P: Platform>(
    _k: &mut Kernel,
    t: &mut Task<P>,
    a: [u64; 6],
    set: bool,
) -> SysResult {
    let which = a[0] as i32;
    if !(0..=2).contains(&which) {
        return Err(EINVAL);
    }
    let who = a[1] as i32;
    if who < 0 {
        return Err(ESRCH);
    }
    let nice = set.then(|| (a[2] as i32).clamp(-20, 19));
    t.request = Some(Request::Priority {
        which: which as u32,
        who: who as u32,
        set: nice,
    });
    Ok(0)
}

/// `getcpu(cpu, node, tcache)`: the Sentry runs its tasks on one CPU (0) of one node (0).
pub fn getcpu<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    for ptr in [a[0], a[1]] {
        if ptr != 0 {
            t.mm.lock().write_obj(ptr, &0u32)?;
        }
    }
    Ok(0)
}
