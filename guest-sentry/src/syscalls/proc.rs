//! Process syscalls: exit, identity, `uname`, `arch_prctl`, limits, signal dispositions.

use alloc::vec::Vec;

use crate::errno::{SysResult, EFAULT, EINVAL, EPERM, ESRCH};
use crate::host::ExitStatus;
use crate::kernel::{Kernel, Rlimit, Task, RLIM_NLIMITS};
use crate::linux::{Rusage, StackT, Sysinfo, Utsname};
use crate::platform::Platform;
use crate::sched::{Exec, Request};
use crate::signal::{self, SigAction, NSIG, SS_DISABLE, SS_ONSTACK, UNBLOCKABLE};

pub fn exit<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    t.exit = Some(ExitStatus {
        code: (a[0] & 0xff) as i32,
        signal: 0,
    });
    Ok(0)
}

pub fn uname<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    let fields: [&[u8]; 6] = [
        b"Linux",
        k.config.hostname.as_bytes(),
        b"6.1.0",
        b"#1 SMP vmm sandbox",
        b"x86_64",
        b"(none)",
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
    t.mm.write_obj(a[0], &uts)?;
    Ok(0)
}

pub fn arch_prctl<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const ARCH_SET_GS: u64 = 0x1001;
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    const ARCH_GET_GS: u64 = 0x1004;
    const TASK_SIZE_MAX: u64 = 0x7fff_ffff_f000;
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
        ARCH_GET_FS => t.mm.write_obj(a[1], &t.regs.fs_base).map(|_| 0),
        ARCH_GET_GS => t.mm.write_obj(a[1], &t.regs.gs_base).map(|_| 0),
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
        let l: Rlimit = t.mm.read_obj(new)?;
        if l.cur > l.max {
            return Err(EINVAL);
        }
        Some(l)
    } else {
        None
    };
    if old != 0 {
        t.mm.write_obj(old, &t.rlimits[r])?;
    }
    if let Some(l) = new_limit {
        t.rlimits[r] = l;
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
        let n: SigAction = t.mm.read_obj(act)?;
        Some(SigAction {
            mask: n.mask & !UNBLOCKABLE,
            ..n
        })
    } else {
        None
    };
    let slot = (sig - 1) as usize;
    if oact != 0 {
        t.mm.write_obj(oact, &t.signals.actions[slot])
            .map_err(|_| EFAULT)?;
    }
    if let Some(n) = new {
        t.signals.actions[slot] = n;
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
        let s = t.mm.read_u64(set)?;
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
        t.mm.write_obj(oset, &old)?;
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
            let s = t.mm.read_cstr(a[1], 4096).or_else(|e| {
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
        PR_GET_NAME => t.mm.copy_out(a[1], &t.comm).map(|_| 0),
        PR_GET_DUMPABLE => Ok(1),
        _ => Err(EINVAL),
    }
}

/// `fork`, `vfork` and `clone` (a new process: threads are not supported yet).
pub fn fork<P: Platform>(k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    const CLONE_THREAD: u64 = 0x10000;
    const CLONE_PARENT_SETTID: u64 = 0x100000;
    const CLONE_CHILD_SETTID: u64 = 0x1000000;
    let [flags, stack, ptid, ctid, ..] = a;
    if flags & CLONE_THREAD != 0 {
        k.log(format_args!(
            "clone of a thread (flags {flags:#x}): threads are not supported yet"
        ));
        return Err(crate::errno::ENOSYS);
    }
    t.request = Some(Request::Fork {
        stack,
        child_tid: if flags & CLONE_CHILD_SETTID != 0 {
            ctid
        } else {
            0
        },
        parent_tid: if flags & CLONE_PARENT_SETTID != 0 {
            ptid
        } else {
            0
        },
    });
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
        let p = t.mm.read_u64(addr + 8 * i)?;
        if p == 0 {
            return Ok(out);
        }
        let s = t.mm.read_cstr(p, 128 * 1024).map_err(|e| {
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
    let path = t.mm.read_cstr(a[0], 4096)?;
    let argv = read_strings(t, a[1])?;
    let envp = read_strings(t, a[2])?;
    let (image, exe_path, argv) = super::fs::load_exec(k, t, &path, argv, 0)?;
    t.request = Some(Request::Exec(Exec {
        image,
        execfn: path,
        exe_path,
        argv,
        envp,
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
        t.mm.write_obj(a[3], &Rusage::default())?; // not accounted yet
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
        t.mm.write_obj(a[4], &Rusage::default())?; // not accounted yet
    }
    t.request = Some(Request::Wait {
        pid,
        status: 0,
        options,
        info: Some(a[2]),
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
    Ok(if a[1] == 1 { t.sid } else { t.pgid } as u64)
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
    if t.pgid == t.pid {
        return Err(EPERM);
    }
    t.sid = t.pid;
    t.pgid = t.pid;
    Ok(t.pid as u64)
}

/// `rt_sigsuspend(mask, size)`: waits with `mask` in place until a handled signal arrives; the
/// old mask returns when the handler does. Always fails with EINTR.
pub fn rt_sigsuspend<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    if a[1] != 8 {
        return Err(EINVAL);
    }
    let mask = t.mm.read_u64(a[0])?;
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
        t.mm.write_obj(a[1], &old)?;
    }
    if a[0] != 0 {
        let ss: StackT = t.mm.read_obj(a[0])?;
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
    t.mm.write_obj(a[0], &info)?;
    Ok(0)
}

/// `getcpu(cpu, node, tcache)`: the Sentry runs its tasks on one CPU (0) of one node (0).
pub fn getcpu<P: Platform>(_k: &mut Kernel, t: &mut Task<P>, a: [u64; 6]) -> SysResult {
    for ptr in [a[0], a[1]] {
        if ptr != 0 {
            t.mm.write_obj(ptr, &0u32)?;
        }
    }
    Ok(0)
}
