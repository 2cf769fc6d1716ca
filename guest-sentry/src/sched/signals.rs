//! Signals between tasks and job control: `kill`, `tgkill`, which thread takes a signal sent
//! to a process, waits a signal interrupts, host signals, stops and continues reported to
//! parents, process groups (gVisor's `task_signals.go`, `sessions.go`).

use super::*;

/// The thread of process `pid` that a signal `sig` sent to the process goes to: one that
/// does not block it (the leader first), else the leader (it stays pending for the process).
pub(super) fn signal_target<P: Platform>(table: &Table<P>, pid: u32, sig: i32) -> Option<u32> {
    let takes = |t: &Task<P>| t.signals.blocked & signal::bit(sig) == 0 && t.exit.is_none();
    if table
        .tasks
        .get(&pid)
        .is_some_and(|t| t.pid == pid && takes(t))
    {
        return Some(pid);
    }
    table
        .tasks
        .iter()
        .find(|(_, t)| t.pid == pid && takes(t))
        .map(|(&tid, _)| tid)
        .or_else(|| any_thread(table, pid))
}

/// Posts `signo` to process `pid` as sent by the kernel (SI_KERNEL); a wait it interrupts ends.
pub(super) fn send_to_process<P: Platform>(
    futex: &mut Futexes,
    table: &mut Table<P>,
    pid: u32,
    signo: i32,
    restartable: fn(u64) -> bool,
) {
    let Some(tid) = signal_target(table, pid, signo) else {
        return;
    };
    let t = table.tasks.get_mut(&tid).expect("target exists");
    let info = signal::SigInfo {
        signo,
        code: signal::SI_KERNEL,
        ..Default::default()
    };
    signal::post(t, info);
    interrupt_wait(futex, t, restartable);
}

/// Sends the signals of process `pid`'s POSIX timers that expired (`due`): to the process, or
/// to the thread `SIGEV_THREAD_ID` names (none if it has exited). A timer whose previous
/// signal is still pending sends none: that signal's overrun count grows instead.
pub(super) fn send_timer_signals<P: Platform>(
    futex: &mut Futexes,
    table: &mut Table<P>,
    pid: u32,
    due: &[crate::posix_timers::Expiry],
    restartable: fn(u64) -> bool,
) {
    use crate::posix_timers::Notify;
    for e in due {
        let (signo, target, thread) = match e.notify {
            Notify::None => continue,
            Notify::Process { signo } => (signo, signal_target(table, pid, signo), false),
            Notify::Thread { signo, tid } => {
                let alive = table
                    .tasks
                    .get(&tid)
                    .is_some_and(|t| t.pid == pid && t.exit.is_none());
                (signo, alive.then_some(tid), true)
            }
        };
        let Some(t) = target.and_then(|tid| table.tasks.get_mut(&tid)) else {
            continue;
        };
        if signal::timer_overrun(t, thread, signo, e.id, e.count) {
            continue;
        }
        let info = signal::SigInfo {
            signo,
            code: signal::SI_TIMER,
            timerid: e.id,
            overrun: crate::posix_timers::add_overruns(0, e.count - 1),
            value: e.value,
            ..Default::default()
        };
        if thread {
            signal::post_thread(t, info);
        } else {
            signal::post(t, info);
        }
        interrupt_wait(futex, t, restartable);
    }
}

/// Host signals for the sandbox (bit n = signal n): the terminal's SIGINT and SIGQUIT go to
/// the foreground process group (init's unless a shell moved it with `TIOCSPGRP`), and anything
/// else (SIGTERM, SIGHUP sent to `vmm`) to init, as a container runtime forwards them.
pub(super) fn forward_host_signals<P: Platform>(
    futex: &mut Futexes,
    table: &mut Table<P>,
    bits: u64,
    foreground: u32,
) {
    let restartable = table.syscalls.restartable;
    for signo in 1..signal::NSIG as i32 {
        if bits & (1u64 << signo) == 0 {
            continue;
        }
        let terminal = signo == signal::SIGINT || signo == signal::SIGQUIT;
        let mut pids: Vec<u32> = table
            .tasks
            .values()
            .filter(|t| {
                if terminal {
                    t.tg.get().pgid == foreground
                } else {
                    t.pid == 1
                }
            })
            .map(|t| t.pid)
            .collect();
        pids.dedup();
        for pid in pids {
            send_to_process(futex, table, pid, signo, restartable);
        }
    }
}

/// Signals pseudo-terminals sent ([`crate::tty::Outbox`]): to every process of a group, or
/// to one process.
pub(super) fn send_terminal_signals<P: Platform>(
    futex: &mut Futexes,
    table: &mut Table<P>,
    signals: &[(crate::tty::Target, i32)],
) {
    use crate::tty::Target;
    let restartable = table.syscalls.restartable;
    for &(target, sig) in signals {
        let mut pids: Vec<u32> = table
            .tasks
            .values()
            .filter(|t| match target {
                Target::Group(g) => t.tg.get().pgid == g,
                Target::Process(p) => t.pid == p,
            })
            .map(|t| t.pid)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        for pid in pids {
            send_to_process(futex, table, pid, sig, restartable);
        }
    }
}

/// Waiting tasks with a signal to handle stop waiting. A signal sent to a thread interrupts
/// that thread; one sent to a process interrupts one of its threads that does not block it,
/// and none when such a thread is running anyway (it takes the signal on its way back to the
/// app).
pub(super) fn interrupt_waits<P: Platform>(futex: &mut Futexes, table: &mut Table<P>) {
    let restartable = table.syscalls.restartable;
    let mut groups: Vec<(u32, u64)> = Vec::new();
    for t in table.tasks.values_mut() {
        let own = t.signals.pending & !t.signals.blocked;
        if own != 0 && signal::deliverable(t).is_some_and(|s| own & signal::bit(s) != 0) {
            interrupt_wait(futex, t, restartable);
        }
        let shared = t.tg.get().pending.mask;
        if shared != 0 && !groups.iter().any(|&(p, _)| p == t.pid) {
            groups.push((t.pid, shared));
        }
    }
    for (pid, mut shared) in groups {
        // Signals a running thread of the process will take anyway.
        for t in table.tasks.values().filter(|t| t.pid == pid) {
            if t.state == RunState::Running {
                shared &= t.signals.blocked;
            }
        }
        while shared != 0 {
            let sig = shared.trailing_zeros() as i32 + 1;
            shared &= !signal::bit(sig);
            let waiter = table.tasks.values_mut().find(|t| {
                t.pid == pid
                    && t.state != RunState::Running
                    && t.signals.blocked & signal::bit(sig) == 0
                    && signal::deliverable(t).is_some()
            });
            if let Some(t) = waiter {
                interrupt_wait(futex, t, restartable);
            }
        }
    }
}

/// A waiting task with a signal to handle stops waiting: its syscall fails with EINTR, or, when
/// the handler was installed with SA_RESTART and the syscall is one Linux restarts, is made
/// again once the handler returns (the registers point back at the `syscall` instruction).
pub(super) fn interrupt_wait<P: Platform>(
    futex: &mut Futexes,
    t: &mut Task<P>,
    restartable: fn(u64) -> bool,
) {
    // A stopped task's wait goes on after SIGCONT (Linux restarts it); its signals wait too.
    if t.state == RunState::Running || t.tg.get().job.stopped {
        return;
    }
    let Some(sig) = signal::deliverable(t) else {
        return;
    };
    if t.state == RunState::Queued && t.vfork_child_pending() {
        // A vfork parent waits for its child whatever arrives (Linux: the wait is not
        // interruptible); the signal is taken after.
        return;
    }
    t.state = RunState::Running;
    t.request = None;
    t.wake_at = None;
    futex.cancel(t.tid);
    let act = t.sighand.get()[(sig - 1) as usize];
    let moved = core::mem::take(&mut t.partial_write);
    if moved > 0 {
        // A write that moved bytes already returns their count, as Linux's does.
        t.regs.rax = moved;
    } else if act.flags & signal::SA_RESTART != 0 && restartable(t.regs.orig_rax) {
        t.regs.rax = t.regs.orig_rax;
        t.regs.rip = t.regs.rip.wrapping_sub(2);
    } else {
        t.regs.rax = crate::errno::to_rax(Err(crate::errno::EINTR));
    }
}

/// Tells parents about children that stopped or continued: SIGCHLD (CLD_STOPPED /
/// CLD_CONTINUED) unless the parent asked for none (SA_NOCLDSTOP), and a wake-up for a parent
/// waiting with WUNTRACED / WCONTINUED.
pub(super) fn notify_job_changes<P: Platform>(table: &mut Table<P>) {
    if !table.tasks.values().any(|t| t.tg.get().job.notify) {
        return;
    }
    let mut changed: Vec<(u32, u32, i32)> = Vec::new();
    for t in table.tasks.values() {
        let mut g = t.tg.lock();
        if g.job.notify {
            g.job.notify = false;
            if let Some(e) = g.job.event {
                changed.push((t.pid, g.ppid, e));
            }
        }
    }
    for (pid, ppid, event) in changed {
        note_progress();
        let Some(ptid) = signal_target(table, ppid, signal::SIGCHLD) else {
            continue;
        };
        let parent = table.tasks.get_mut(&ptid).expect("parent exists");
        let act = parent.sighand.get()[(signal::SIGCHLD - 1) as usize];
        if act.flags & signal::SA_NOCLDSTOP != 0 {
            continue;
        }
        let code = if event == signal::SIGCONT {
            signal::CLD_CONTINUED
        } else {
            signal::CLD_STOPPED
        };
        post_sigchld(parent, signal::SIGCHLD, pid, code, event);
    }
}

/// Whether process group `pgid` is orphaned: no member has a parent in another group of the
/// same session (init's group, whose leader has no parent here, usually is). Terminal stop
/// signals to an orphaned group are discarded, as Linux does, lest nothing ever continue it.
pub(super) fn orphaned<P: Platform>(table: &Table<P>, pgid: u32) -> bool {
    !table.tasks.values().any(|t| {
        let g = t.tg.get();
        g.pgid == pgid
            && any_thread(table, g.ppid).is_some_and(|p| {
                let pg = table.tasks[&p].tg.get();
                pg.pgid != pgid && pg.sid == g.sid
            })
    })
}

/// Whether `sig` sent to `t` is a terminal stop (SIGTSTP, SIGTTIN, SIGTTOU) that would take
/// its default action in an orphaned group, and so is discarded.
pub(super) fn discarded_stop<P: Platform>(table: &Table<P>, t: &Task<P>, sig: i32) -> bool {
    matches!(sig, signal::SIGTSTP | signal::SIGTTIN | signal::SIGTTOU)
        && t.sighand.get()[(sig - 1) as usize].handler == signal::SIG_DFL
        && orphaned(table, t.tg.get().pgid)
}

/// `setpgid(target, group)` by `caller` for itself or one of its children: the target must be
/// in the caller's session and not a session leader, and `group` must be the target itself or
/// an existing group of that session (Linux's rules; a child that has exec'd is not refused).
pub(super) fn setpgid<P: Platform>(
    table: &mut Table<P>,
    caller: u32,
    target: u32,
    group: u32,
) -> Result<(), Errno> {
    let (me, my_sid) = {
        let t = &table.tasks[&caller];
        (t.pid, t.tg.get().sid)
    };
    let child = any_thread(table, target).ok_or(ESRCH)?;
    let (cppid, csid) = {
        let g = table.tasks[&child].tg.get();
        (g.ppid, g.sid)
    };
    if target != me && cppid != me {
        return Err(ESRCH);
    }
    if csid != my_sid || csid == target {
        return Err(EPERM);
    }
    let group = if group == 0 { target } else { group };
    if group != target
        && !table.tasks.values().any(|o| {
            let g = o.tg.get();
            g.pgid == group && g.sid == my_sid
        })
    {
        return Err(EPERM);
    }
    table.tasks[&child].tg.lock().pgid = group;
    note_progress();
    Ok(())
}

/// The info of a signal `sender` sends with `kill`/`tgkill`.
pub(super) fn user_info<P: Platform>(table: &Table<P>, sender: u32, sig: i32) -> signal::SigInfo {
    signal::SigInfo {
        signo: sig,
        code: signal::SI_USER,
        pid: table.tasks.get(&sender).map_or(0, |t| t.pid),
        ..Default::default()
    }
}

pub(super) fn kill<P: Platform>(
    table: &mut Table<P>,
    sender: u32,
    target: i64,
    sig: i32,
) -> Result<(), Errno> {
    if !(0..=signal::NSIG as i32).contains(&sig) {
        return Err(crate::errno::EINVAL);
    }
    let me = table.tasks[&sender].pid;
    // 0: the caller's own process group; < -1: that group; -1: everyone but init and the
    // caller's process (Linux skips the caller).
    let group = match target {
        0 => Some(table.tasks[&sender].tg.get().pgid as i64),
        t if t < -1 => Some(-t),
        _ => None,
    };
    let mut pids: Vec<u32> = table
        .tasks
        .values()
        .filter(|t| match (target, group) {
            (_, Some(g)) => t.tg.get().pgid as i64 == g,
            (-1, None) => t.pid != 1 && t.pid != me,
            (p, None) => t.pid as i64 == p,
        })
        .map(|t| t.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    if pids.is_empty() {
        return Err(ESRCH);
    }
    if sig == 0 {
        return Ok(());
    }
    let info = user_info(table, sender, sig);
    for p in pids {
        let Some(tid) = signal_target(table, p, sig) else {
            continue;
        };
        if discarded_stop(table, &table.tasks[&tid], sig) {
            continue;
        }
        signal::post(table.tasks.get_mut(&tid).expect("target exists"), info);
    }
    Ok(())
}

/// `tgkill(tgid, tid, sig)` / `tkill(tid, sig)`: a signal to one thread.
pub(super) fn tkill<P: Platform>(
    table: &mut Table<P>,
    sender: u32,
    tgid: Option<u32>,
    target: u32,
    sig: i32,
) -> Result<(), Errno> {
    if !(0..=signal::NSIG as i32).contains(&sig) {
        return Err(crate::errno::EINVAL);
    }
    let t = table.tasks.get(&target).ok_or(ESRCH)?;
    if tgid.is_some_and(|g| g != t.pid) || t.exit.is_some() {
        return Err(ESRCH);
    }
    if sig == 0 || discarded_stop(table, t, sig) {
        return Ok(());
    }
    let info = signal::SigInfo {
        code: signal::SI_TKILL,
        ..user_info(table, sender, sig)
    };
    signal::post_thread(table.tasks.get_mut(&target).expect("target exists"), info);
    Ok(())
}
