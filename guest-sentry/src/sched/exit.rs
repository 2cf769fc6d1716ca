//! Exits and waits: a thread's end (its tid word, robust futexes, a vfork parent), the
//! process's end with its last thread (zombie, SIGCHLD, children to init), and `wait4` /
//! `waitid` (gVisor's `task_exit.go`).

use super::*;

/// Takes every thread that exited out of the table, and every thread of a group that is
/// exiting as a whole; a process whose last thread went is reaped (the sandbox is done when
/// init is).
pub(super) fn continue_after_exit<P: Platform>(k: &mut Kernel, table: &mut Table<P>) {
    let exiting = |t: &Task<P>| t.exit.is_some() || t.tg.get().group_exit.is_some();
    if !table.tasks.values().any(exiting) {
        return;
    }
    let exited: Vec<u32> = table
        .tasks
        .iter()
        .filter(|(_, t)| exiting(t))
        .map(|(&tid, _)| tid)
        .collect();
    for tid in exited {
        // Its app may still run on its own: it stops before its memory goes.
        recall(table, tid);
        let t = table.tasks.remove(&tid).expect("exited task exists");
        exit_thread(k, table, t);
        if table.done.is_some() {
            return;
        }
    }
}

/// A thread ends: its tid word is cleared and woken (`CLONE_CHILD_CLEARTID`,
/// `set_tid_address`: `pthread_join` waits on it), the robust futexes it holds are marked
/// for their next owner, a vfork parent goes on; the last thread's exit ends the process.
pub(super) fn exit_thread<P: Platform>(k: &mut Kernel, table: &mut Table<P>, mut t: Task<P>) {
    note_progress();
    let status = {
        let g = t.tg.get();
        g.group_exit.or(t.exit).unwrap_or_default()
    };
    k.futex.cancel(t.tid);
    // Robust futexes may be shared with other processes: always. The tid word only matters
    // to threads still sharing the memory (Linux: mm_users > 1).
    crate::futex::exit_robust_list(k, &t);
    if !t.mm.sole() && t.clear_child_tid != 0 {
        let addr = t.clear_child_tid;
        if t.mm.lock().write_obj(addr, &0u32).is_ok() {
            if let Ok(key) = crate::futex::key_for(&t, addr, false) {
                k.futex.wake(key, 1, u32::MAX);
            }
        }
    }
    release_vfork_parent(table, &mut t);
    let remaining = {
        let mut g = t.tg.lock();
        g.threads -= 1;
        if t.is_leader() {
            g.leader_exit = Some(status);
        }
        g.threads
    };
    if remaining > 0 {
        release_task(k, t);
        return;
    }
    let status = {
        let g = t.tg.get();
        g.group_exit.or(g.leader_exit).unwrap_or(status)
    };
    let pid = t.pid;
    crate::tty::process_exited(pid, &t.tg.get());
    k.locks.release_process(pid);
    if pid == 1 {
        drop(t);
        table.done = Some(status);
        return;
    }
    let (ppid, pgid, exit_signal) = {
        let g = t.tg.get();
        (g.ppid, g.pgid, g.exit_signal)
    };
    release_task(k, t);
    // Its SEM_UNDO adjustments are undone; segments it held may go.
    crate::syscalls::ipc::exit_process(k, pid);
    // Its children go to init, which hears of their ends by SIGCHLD whatever they asked
    // for (Linux: "we don't want people slaying init").
    for c in table.tasks.values() {
        let mut g = c.tg.lock();
        if g.ppid == pid {
            g.ppid = 1;
            g.exit_signal = signal::SIGCHLD;
        }
    }
    for z in table.zombies.values_mut().filter(|z| z.ppid == pid) {
        z.ppid = 1;
        z.exit_signal = signal::SIGCHLD;
    }
    table.zombies.insert(
        pid,
        Zombie {
            ppid,
            pgid,
            status,
            exit_signal,
        },
    );
    if exit_signal != 0 {
        if let Some(ptid) = signal_target(table, ppid, exit_signal) {
            let (code, st) = if status.signal != 0 {
                (signal::CLD_KILLED, status.signal)
            } else {
                (signal::CLD_EXITED, status.code)
            };
            let parent = table.tasks.get_mut(&ptid).expect("parent exists");
            post_sigchld(parent, exit_signal, pid, code, st);
        }
    }
}

/// Drops what an exited thread held: its descriptors and memory go with their last holder
/// (the address space with its memory: a stub process is killed).
pub(super) fn release_task<P: Platform>(k: &Kernel, t: Task<P>) {
    if t.files.sole() {
        let fds = core::mem::take(&mut t.files.lock().fds);
        for fd in fds.into_iter().flatten() {
            crate::file::release(k.host, fd);
        }
    }
    if t.mm.sole() {
        t.mm.lock().release();
    }
    drop(t);
}

/// A `CLONE_VFORK` child execs or exits: its parent, waiting since the clone, goes on.
pub(super) fn release_vfork_parent<P: Platform>(table: &mut Table<P>, child: &mut Task<P>) {
    if let Some(ptid) = child.vfork_parent.take() {
        if let Some(p) = table.tasks.get_mut(&ptid) {
            p.vfork_child = None;
            if p.state == RunState::Queued {
                p.state = RunState::Running;
            }
        }
    }
}

/// Tells `parent` about child `pid`: `sig` (SIGCHLD, or the child's exit signal) with `code`
/// (CLD_*) and `status`.
pub(super) fn post_sigchld<P: Platform>(
    parent: &mut Task<P>,
    sig: i32,
    pid: u32,
    code: i32,
    status: i32,
) {
    let info = signal::SigInfo {
        signo: sig,
        code,
        pid,
        status,
        ..Default::default()
    };
    signal::post(parent, info);
}

/// Linux's wait status word.
pub(super) fn wait_status(s: ExitStatus) -> u32 {
    if s.signal != 0 {
        s.signal as u32 & 0x7f
    } else {
        (s.code as u32 & 0xff) << 8
    }
}

/// The `siginfo_t` waitid reports for child `pid`: SIGCHLD, CLD_EXITED/KILLED, pid, uid, status.
pub(super) fn child_siginfo(pid: u32, s: ExitStatus) -> Siginfo {
    if s.signal != 0 {
        child_siginfo_for(pid, signal::CLD_KILLED, s.signal)
    } else {
        child_siginfo_for(pid, signal::CLD_EXITED, s.code)
    }
}

/// A waitid `siginfo_t` with `code` (CLD_*) and `st` (exit code or signal).
pub(super) fn child_siginfo_for(pid: u32, code: i32, st: i32) -> Siginfo {
    Siginfo {
        si_signo: signal::SIGCHLD,
        si_code: code,
        fields: zerocopy::transmute!(SigChld {
            si_pid: pid as i32,
            si_uid: crate::kernel::SANDBOX_IDS[0],
            si_status: st,
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn wait<P: Platform>(
    table: &mut Table<P>,
    tid: u32,
    which: i64,
    status: u64,
    options: u64,
    info: Option<u64>,
) {
    const WUNTRACED: u64 = 2; // waitid's WSTOPPED
    const WEXITED: u64 = 4;
    const WCONTINUED: u64 = 8;
    const WNOWAIT: u64 = 0x0100_0000;
    const WALL: u64 = 0x4000_0000;
    const WCLONE: u64 = 0x8000_0000;
    let (me, my_pgid) = match table.tasks.get(&tid) {
        Some(t) => (t.pid, t.tg.get().pgid),
        None => return,
    };
    let matches = |cpid: u32, cpgid: u32| match which {
        -1 => true,
        0 => cpgid == my_pgid,
        w if w < -1 => cpgid as i64 == -w,
        w => cpid as i64 == w,
    };
    // Children whose exit signal is not SIGCHLD are "clone" children: only __WCLONE (or
    // __WALL) waits see them, and only those waits with __WCLONE alone.
    let kind_ok = |exit_signal: i32| {
        options & WALL != 0 || (exit_signal == signal::SIGCHLD) == (options & WCLONE == 0)
    };
    // wait4 always reports exits; waitid only with WEXITED.
    let exits = info.is_none() || options & WEXITED != 0;
    let zombie = table
        .zombies
        .iter()
        .find(|(&c, z)| exits && z.ppid == me && matches(c, z.pgid) && kind_ok(z.exit_signal))
        .map(|(&c, _)| c);
    // Children (processes, not threads) that may still report something.
    let child_of_mine = |t: &Task<P>| {
        let g = t.tg.get();
        g.ppid == me && matches(t.pid, g.pgid) && kind_ok(g.exit_signal)
    };
    let live = table.tasks.values().any(child_of_mine)
        || table
            .zombies
            .iter()
            .any(|(&c, z)| z.ppid == me && matches(c, z.pgid) && kind_ok(z.exit_signal));
    // A live child's stop (WUNTRACED) or continue (WCONTINUED) not yet waited for.
    let job = table
        .tasks
        .values()
        .filter(|c| child_of_mine(c))
        .find_map(|c| {
            let g = c.tg.get();
            match g.job.event {
                Some(signal::SIGCONT) if options & WCONTINUED != 0 => {
                    Some((c.pid, signal::SIGCONT))
                }
                Some(sig)
                    if sig != signal::SIGCONT && g.job.stopped && options & WUNTRACED != 0 =>
                {
                    Some((c.pid, sig))
                }
                _ => None,
            }
        });
    let mut collected = None;
    let t = table.tasks.get_mut(&tid).expect("waiting task");
    let r = if let (None, Some((c, event))) = (zombie, job) {
        let continued = event == signal::SIGCONT;
        let r = match info {
            Some(infop) if infop != 0 => {
                let code = if continued {
                    signal::CLD_CONTINUED
                } else {
                    signal::CLD_STOPPED
                };
                t.mm.lock()
                    .write_obj(infop, &child_siginfo_for(c, code, event))
            }
            Some(_) => Ok(()),
            None if status != 0 => {
                let word: u32 = if continued {
                    0xffff
                } else {
                    (event as u32) << 8 | 0x7f
                };
                t.mm.lock().write_obj(status, &word)
            }
            None => Ok(()),
        };
        if r.is_ok() && !(info.is_some() && options & WNOWAIT != 0) {
            collected = Some(c);
        }
        r.map(|()| if info.is_some() { 0 } else { c as u64 })
    } else if let Some(c) = zombie {
        let z = &table.zombies[&c];
        let r = match info {
            // waitid: a siginfo, 0 returned.
            Some(infop) if infop != 0 => t.mm.lock().write_obj(infop, &child_siginfo(c, z.status)),
            Some(_) => Ok(()),
            None if status != 0 => t.mm.lock().write_obj(status, &wait_status(z.status)),
            None => Ok(()),
        };
        // WNOWAIT (waitid) leaves the child waitable.
        if r.is_ok() && !(info.is_some() && options & WNOWAIT != 0) {
            table.zombies.remove(&c);
        }
        r.map(|()| if info.is_some() { 0 } else { c as u64 })
    } else if !live {
        Err(ECHILD)
    } else if options & WNOHANG != 0 {
        // waitid with nothing to report clears si_signo and si_pid (Linux: the whole info).
        match info {
            Some(infop) if infop != 0 => {
                t.mm.lock()
                    .write_obj(infop, &Siginfo::default())
                    .map(|()| 0)
            }
            _ => Ok(0),
        }
    } else {
        t.state = RunState::Blocked;
        return;
    };
    t.regs.rax = crate::errno::to_rax(r);
    if let Some(child) = collected.and_then(|c| any_thread(table, c)) {
        table.tasks[&child].tg.lock().job.event = None;
    }
}

/// A process that has exited and that its parent has not waited for yet.
pub(super) struct Zombie {
    pub(super) ppid: u32,
    pub(super) pgid: u32,
    pub(super) status: ExitStatus,
    /// The signal its parent was sent at its exit (0: none; only `__WCLONE` waits see it).
    pub(super) exit_signal: i32,
}
