//! Processes and the scheduler: the task table, `fork`, `execve`, `wait4`, `kill`, exits and
//! blocking. The Sentry is single-threaded: it runs one task's events at a time and switches
//! when a task blocks, exits or has had its turn. A syscall that must wait (an empty pipe, a
//! child still running) is dispatched again when something may have changed.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::errno::{Errno, ECHILD, EPERM, ESRCH};
use crate::host::ExitStatus;
use crate::kernel::{handle_event, Kernel, RunError, Syscalls, Task};
use crate::loader;
use crate::mm::Mm;
use crate::platform::{AddressSpace, Context, Platform};
use crate::signal;

/// What a syscall asks of the scheduler, which alone can see every task and the platform.
pub enum Request {
    /// The syscall cannot complete now: dispatch it again when another task made progress.
    Block,
    /// `fork`/`vfork`/`clone` of a new process; `stack` is the child's new stack pointer (0 =
    /// the parent's); the child's pid is stored at `child_tid` in the child (`CLONE_CHILD_SETTID`)
    /// and at `parent_tid` in the parent (`CLONE_PARENT_SETTID`) when non-zero.
    Fork {
        stack: u64,
        child_tid: u64,
        parent_tid: u64,
    },
    /// Replace the program.
    Exec(Exec),
    /// `wait4(pid, status, options)` (`info` = 0) or `waitid` (`info` = the siginfo
    /// address, `status` unused; `pid` in wait4's encoding).
    Wait {
        pid: i64,
        status: u64,
        options: u64,
        info: Option<u64>,
    },
    /// `kill(pid, sig)`.
    Kill { pid: i64, sig: i32 },
    /// `setpgid(pid, pgid)` (`pid` resolved: never 0).
    SetPgid { pid: u32, pgid: u32 },
    /// `getpgid(pid)` (`sid` false) or `getsid(pid)` of another process.
    GetPgid { pid: u32, sid: bool },
    /// The syscall needs other processes' `/proc` entries: render them, then run it again.
    ProcView,
}

pub struct Exec {
    pub image: crate::image_cache::ExecSource,
    pub execfn: Vec<u8>,
    pub exe_path: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
}

/// Where a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Runs app code (or is about to).
    Running,
    /// Waits in a syscall until another task makes progress.
    Blocked,
    /// Was blocked; its syscall is dispatched again when it is next picked.
    Woken,
}

/// Events a task runs before the scheduler looks at the others.
const SLICE: u32 = 64;
/// How long an app that makes no syscalls may keep the CPU from other ready tasks.
const SLICE_NS: u64 = 10_000_000;
const WNOHANG: u64 = 1;

struct Zombie {
    ppid: u32,
    pgid: u32,
    status: ExitStatus,
}

struct Table<P: Platform> {
    /// The syscall layer, as handed to [`run`].
    syscalls: Syscalls<P>,
    tasks: BTreeMap<u32, Task<P>>,
    zombies: BTreeMap<u32, Zombie>,
    next_pid: u32,
    /// Set when init has exited: the sandbox's status.
    done: Option<ExitStatus>,
}

/// Bumped by every change that may let a blocked task go on: data moved through a pipe, a
/// pipe end closed, a child exited, a process group changed. A step of one task that leaves it
/// unchanged (a `stat`, an `mmap`) does not make the blocked tasks retry their syscalls.
static PROGRESS: AtomicU64 = AtomicU64::new(0);

/// Records a change that may unblock other tasks (see [`PROGRESS`]).
pub fn note_progress() {
    PROGRESS.fetch_add(1, Ordering::Relaxed);
}

/// Runs `init` and everything it starts until `init` exits.
pub fn run<P: Platform>(
    platform: &mut P,
    k: &mut Kernel,
    init: Task<P>,
    syscalls: Syscalls<P>,
) -> Result<ExitStatus, RunError> {
    let mut table = Table {
        syscalls,
        tasks: BTreeMap::new(),
        zombies: BTreeMap::new(),
        next_pid: 2,
        done: None,
    };
    table.tasks.insert(1, init);
    let mut current = 1u32;
    let mut last_ran = 1u32;
    let mut progress_seen = PROGRESS.load(Ordering::Relaxed);
    // When the platform was last asked to interrupt the app (CLOCK_MONOTONIC ns).
    let mut preempt_armed: Option<u64> = None;
    let mut slice = 0u32;
    // Host signals the fast path took from the host but left for the top of the loop.
    let mut host_carried = 0u64;
    loop {
        // Sleepers whose time has come are ready to retry; due alarms send SIGALRM.
        let now = k.host.now(crate::host::Clock::Monotonic);
        // A preemption that fell due has fired (or is moot): none is pending any more.
        if preempt_armed.is_some_and(|a| a <= now) {
            preempt_armed = None;
        }
        let restartable = table.syscalls.restartable;
        for t in table.tasks.values_mut() {
            if let Some((at, interval)) = t.alarm {
                if at <= now {
                    t.alarm = (interval > 0).then(|| (now + interval, interval));
                    send_from_kernel(t, signal::SIGALRM, restartable);
                }
            }
            if t.state == RunState::Blocked && t.wake_at.is_some_and(|w| w <= now) {
                t.state = RunState::Woken;
            }
        }
        let host_signals = k.host.take_signals() | core::mem::take(&mut host_carried);
        if host_signals != 0 {
            forward_host_signals(&mut table, host_signals, k.foreground_pgid);
        }
        // An alarm's (or a host signal's) default action may have ended (or stopped) a task.
        continue_after_exit(k, &mut table);
        notify_job_changes(&mut table);
        // Something a blocked task may wait for changed since we last looked: they all try
        // their syscalls again.
        let progress = PROGRESS.load(Ordering::Relaxed);
        if progress != progress_seen {
            progress_seen = progress;
            for t in table.tasks.values_mut() {
                if t.state == RunState::Blocked {
                    t.state = RunState::Woken;
                }
            }
        }
        if let Some(status) = table.done.take() {
            return Ok(status);
        }
        let Some(pid) = pick(&table, current, slice >= SLICE) else {
            // Nothing can run: sleep until the earliest timeout. With none, only a signal
            // from outside (Ctrl-C, `kill`) can change anything: wait for one, as Linux would
            // (a sleep returns early when one arrives).
            let wait = next_timer(&table).map_or(1_000_000_000, |w| w.saturating_sub(now));
            k.host.sleep(wait);
            continue;
        };
        if pid != current {
            slice = 0;
        }
        current = pid;
        slice += 1;

        let t = table.tasks.get_mut(&pid).expect("picked task exists");
        // Set when the task's app ran (preemption armed for it just before) and made an event
        // other than an interrupt that asked nothing of the scheduler: its `alarm` before, and
        // whether other tasks were ready when preemption was armed.
        let mut ran_app = None;
        if t.state == RunState::Woken {
            t.state = RunState::Running;
            (table.syscalls.dispatch)(k, t);
        } else {
            if let Some(sig) = signal::deliverable(t) {
                signal::deliver(k, t, sig);
                if t.exit.is_some() {
                    // The delivery itself ended the task (no room for a frame, ...).
                    continue_after_exit(k, &mut table);
                    if table.done.is_some() {
                        return Ok(table.done.take().unwrap());
                    }
                    continue;
                }
            }
            // The app may now run without calling the Sentry: make sure it is interrupted by
            // the next timer due, or after a time slice when other tasks want the CPU.
            let others_ready = others_ready(&table, pid);
            if P::PREEMPT_ON_REQUEST {
                let slice_end = others_ready.then_some(now + SLICE_NS);
                if let Some(due) = next_timer(&table).into_iter().chain(slice_end).min() {
                    if preempt_armed.is_none_or(|a| a <= now || due < a) {
                        platform.preempt_after(due.saturating_sub(now).max(1));
                        preempt_armed = Some(due);
                    }
                }
            }
            // Another task's app is about to run: the one that ran last waits from now on
            // (retrying a blocked task's syscall above runs no app code and parks nothing).
            if last_ran != pid {
                if let Some(prev) = table.tasks.get_mut(&last_ran) {
                    prev.mm.space.park();
                }
                last_ran = pid;
            }
            let t = table.tasks.get_mut(&pid).expect("picked task exists");
            let alarm = t.alarm;
            if run_app(k, t, pid, table.syscalls)? && t.request.is_none() {
                ran_app = Some((alarm, others_ready));
            }
        }
        if let Some(status) = after_step(platform, k, &mut table, pid) {
            return Ok(status);
        }

        // The fast path: while the task that just ran makes syscalls (and takes faults) that
        // ask nothing of the scheduler and change nothing another task could see, the top of
        // the loop would find nothing to do but pick it again. So it goes on here, checking
        // only what could make the top act: its own state, signals and timers, PROGRESS (when
        // a task waits for it), the host-signal word, the earliest deadline (read from the
        // clock only when there is one) and the end of its slice (when others are ready).
        // Its cost does not grow with the number of tasks. It starts only after a step that
        // ran the app with preemption armed by the top for the state it still finds (the
        // same checks as at each of its own steps, below, with the alarm from before).
        let Some((alarm, armed_for_others)) = ran_app else {
            continue;
        };
        // (A wait the step's aftermath interrupted makes another task ready: the top re-arms.)
        let others_ready = others_ready(&table, pid);
        if others_ready != armed_for_others {
            continue;
        }
        let others_blocked = table
            .tasks
            .iter()
            .any(|(&p, o)| p != pid && o.state == RunState::Blocked);
        let deadline = next_timer(&table).into_iter().chain(preempt_armed).min();
        let syscalls = table.syscalls;
        let Some(t) = table.tasks.get_mut(&pid) else {
            continue;
        };
        // The top rotates to another ready task once the slice is used up.
        let slice_end = if others_ready { SLICE } else { u32::MAX };
        // Nothing about the task itself the top would act on (or `after_step` would serve).
        let quiet = |t: &Task<P>, slice: u32| {
            t.state == RunState::Running
                && t.exit.is_none()
                && t.request.is_none()
                && t.wake_at.is_none()
                && t.alarm == alarm
                && !t.job.stopped
                && !t.job.notify
                && slice < slice_end
                && signal::deliverable(t).is_none()
        };
        if !quiet(t, slice) {
            continue;
        }
        loop {
            // Progress matters to blocked tasks only (with none, the top would only note that
            // it saw it).
            let progress = PROGRESS.load(Ordering::Relaxed);
            if others_blocked {
                if progress != progress_seen {
                    break;
                }
            } else {
                progress_seen = progress;
            }
            match k.host_signal_word {
                // The top takes them.
                Some(word) if word.load(Ordering::Relaxed) != 0 => break,
                Some(_) => {}
                None => {
                    let bits = k.host.take_signals();
                    if bits != 0 {
                        host_carried = bits;
                        break;
                    }
                }
            }
            if deadline.is_some_and(|d| k.host.now(crate::host::Clock::Monotonic) >= d) {
                break;
            }
            slice += 1;
            if !run_app(k, t, pid, syscalls)? {
                // An interrupt: the top decides what comes next (and re-arms preemption).
                break;
            }
            if !quiet(t, slice) {
                if let Some(status) = after_step(platform, k, &mut table, pid) {
                    return Ok(status);
                }
                break;
            }
        }
    }
}

/// Whether a task other than `pid` could run.
fn others_ready<P: Platform>(table: &Table<P>, pid: u32) -> bool {
    table
        .tasks
        .iter()
        .any(|(&p, t)| p != pid && t.state != RunState::Blocked && !t.job.stopped)
}

/// Runs `t`'s app until its next event and handles it. False when the event was an interrupt
/// (the scheduler's turn). A task (other than init) whose platform context broke is killed.
#[inline(always)] // (into the fast path: no call, no frame of its own)
fn run_app<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    pid: u32,
    syscalls: Syscalls<P>,
) -> Result<bool, RunError> {
    match t.ctx.switch(&mut t.mm.space, &mut t.regs) {
        Ok(crate::platform::Event::Interrupt) => Ok(false),
        // The common case, without `handle_event`'s frame.
        Ok(crate::platform::Event::Syscall) => {
            crate::kernel::serve_syscall(k, t, syscalls.dispatch);
            Ok(true)
        }
        Ok(event) => {
            handle_event(k, t, event, syscalls);
            Ok(true)
        }
        Err(e) if pid == 1 => Err(RunError::Platform(e)),
        Err(e) => {
            k.log(format_args!(
                "process {pid} lost its platform context (errno {}): killed",
                e.0
            ));
            t.exit = Some(ExitStatus {
                code: 0,
                signal: signal::SIGKILL,
            });
            Ok(true)
        }
    }
}

/// What follows a task's step: the request it made, exits (the task itself, or any the
/// request killed), stops and continues, and waits that a signal interrupts. The sandbox's
/// status once init has exited.
fn after_step<P: Platform>(
    platform: &mut P,
    k: &mut Kernel,
    table: &mut Table<P>,
    pid: u32,
) -> Option<ExitStatus> {
    if let Some(req) = table.tasks.get_mut(&pid).and_then(|t| t.request.take()) {
        serve(platform, k, table, pid, req);
    }
    continue_after_exit(k, table);
    notify_job_changes(table);
    if let Some(status) = table.done.take() {
        return Some(status);
    }
    // A waiting task with a signal to handle stops waiting: its syscall fails with EINTR.
    let restartable = table.syscalls.restartable;
    for t in table.tasks.values_mut() {
        interrupt_wait(t, restartable);
    }
    None
}

/// Host signals for the sandbox (bit n = signal n): the terminal's SIGINT and SIGQUIT go to
/// the foreground process group (init's unless a shell moved it with `TIOCSPGRP`), and anything
/// else (SIGTERM, SIGHUP sent to `vmm`) to init, as a container runtime forwards them.
fn forward_host_signals<P: Platform>(table: &mut Table<P>, bits: u64, foreground: u32) {
    for signo in 1..signal::NSIG as i32 {
        if bits & (1u64 << signo) == 0 {
            continue;
        }
        let terminal = signo == signal::SIGINT || signo == signal::SIGQUIT;
        let restartable = table.syscalls.restartable;
        for t in table.tasks.values_mut() {
            let hit = if terminal {
                t.pgid == foreground
            } else {
                t.pid == 1
            };
            if hit {
                send_from_kernel(t, signo, restartable);
            }
        }
    }
}

/// The earliest deadline of any task: a timed wait's end or an alarm (CLOCK_MONOTONIC ns).
fn next_timer<P: Platform>(table: &Table<P>) -> Option<u64> {
    let earlier = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    };
    table.tasks.values().fold(None, |n, t| {
        earlier(earlier(n, t.wake_at), t.alarm.map(|a| a.0))
    })
}

/// Posts `signo` to `t` as sent by the kernel (SI_KERNEL) and ends a wait it interrupts.
fn send_from_kernel<P: Platform>(t: &mut Task<P>, signo: i32, restartable: fn(u64) -> bool) {
    let info = signal::SigInfo {
        signo,
        code: signal::SI_KERNEL,
        ..Default::default()
    };
    signal::post(t, info);
    interrupt_wait(t, restartable);
}

/// A waiting task with a signal to handle stops waiting: its syscall fails with EINTR, or, when
/// the handler was installed with SA_RESTART and the syscall is one Linux restarts, is made
/// again once the handler returns (the registers point back at the `syscall` instruction).
fn interrupt_wait<P: Platform>(t: &mut Task<P>, restartable: fn(u64) -> bool) {
    // A stopped task's wait goes on after SIGCONT (Linux restarts it); its signals wait too.
    if t.state == RunState::Running || t.job.stopped {
        return;
    }
    let Some(sig) = signal::deliverable(t) else {
        return;
    };
    t.state = RunState::Running;
    t.request = None;
    t.wake_at = None;
    let act = t.signals.actions[(sig - 1) as usize];
    if act.flags & signal::SA_RESTART != 0 && restartable(t.regs.orig_rax) {
        t.regs.rax = t.regs.orig_rax;
        t.regs.rip = t.regs.rip.wrapping_sub(2);
    } else {
        t.regs.rax = crate::errno::to_rax(Err(crate::errno::EINTR));
    }
}

/// The next task to run: the current one while its slice lasts, else the next ready one in
/// pid order.
fn pick<P: Platform>(table: &Table<P>, current: u32, rotate: bool) -> Option<u32> {
    let ready = |t: &Task<P>| t.state != RunState::Blocked && !t.job.stopped;
    if !rotate {
        if let Some(t) = table.tasks.get(&current) {
            if ready(t) {
                return Some(current);
            }
        }
    }
    let after = table
        .tasks
        .range(current + 1..)
        .chain(table.tasks.range(..=current));
    for (&p, t) in after {
        if ready(t) {
            return Some(p);
        }
    }
    None
}

/// Tells parents about children that stopped or continued: SIGCHLD (CLD_STOPPED /
/// CLD_CONTINUED) unless the parent asked for none (SA_NOCLDSTOP), and a wake-up for a parent
/// waiting with WUNTRACED / WCONTINUED.
fn notify_job_changes<P: Platform>(table: &mut Table<P>) {
    if !table.tasks.values().any(|t| t.job.notify) {
        return;
    }
    let changed: Vec<(u32, u32, i32)> = table
        .tasks
        .values_mut()
        .filter(|t| t.job.notify)
        .filter_map(|t| {
            t.job.notify = false;
            t.job.event.map(|e| (t.pid, t.ppid, e))
        })
        .collect();
    for (pid, ppid, event) in changed {
        note_progress();
        let Some(parent) = table.tasks.get_mut(&ppid) else {
            continue;
        };
        let act = parent.signals.actions[(signal::SIGCHLD - 1) as usize];
        if act.flags & signal::SA_NOCLDSTOP != 0 {
            continue;
        }
        let code = if event == signal::SIGCONT {
            signal::CLD_CONTINUED
        } else {
            signal::CLD_STOPPED
        };
        post_sigchld(parent, pid, code, event);
    }
}

/// Whether process group `pgid` is orphaned: no member has a parent in another group of the
/// same session (init's group, whose leader has no parent here, usually is). Terminal stop
/// signals to an orphaned group are discarded, as Linux does, lest nothing ever continue it.
fn orphaned<P: Platform>(table: &Table<P>, pgid: u32) -> bool {
    !table.tasks.values().any(|t| {
        t.pgid == pgid
            && table
                .tasks
                .get(&t.ppid)
                .is_some_and(|p| p.pgid != pgid && p.sid == t.sid)
    })
}

/// Whether `sig` sent to `t` is a terminal stop (SIGTSTP, SIGTTIN, SIGTTOU) that would take
/// its default action in an orphaned group, and so is discarded.
fn discarded_stop<P: Platform>(table: &Table<P>, t: &Task<P>, sig: i32) -> bool {
    matches!(sig, signal::SIGTSTP | signal::SIGTTIN | signal::SIGTTOU)
        && t.signals.actions[(sig - 1) as usize].handler == signal::SIG_DFL
        && orphaned(table, t.pgid)
}

/// Takes every task that exited out of the table (the sandbox is done when init exits).
fn continue_after_exit<P: Platform>(k: &Kernel, table: &mut Table<P>) {
    if !table.tasks.values().any(|t| t.exit.is_some()) {
        return;
    }
    let exited: Vec<u32> = table
        .tasks
        .iter()
        .filter(|(_, t)| t.exit.is_some())
        .map(|(&p, _)| p)
        .collect();
    for p in exited {
        let t = table.tasks.remove(&p).expect("exited task exists");
        let status = t.exit.expect("exit status set");
        if p == 1 {
            drop(t);
            table.done = Some(status);
            return;
        }
        reap_task(k, table, t, status);
    }
}

/// A task exited: free what it holds, keep its status for `wait4`, give its children to init.
fn reap_task<P: Platform>(k: &Kernel, table: &mut Table<P>, mut t: Task<P>, status: ExitStatus) {
    note_progress();
    for fd in core::mem::take(&mut t.fds).into_iter().flatten() {
        crate::file::release(k.host, fd);
    }
    t.mm.release();
    let (pid, ppid, pgid) = (t.pid, t.ppid, t.pgid);
    drop(t); // the address space goes with it (a stub process is killed)
    for c in table.tasks.values_mut().filter(|c| c.ppid == pid) {
        c.ppid = 1;
    }
    for z in table.zombies.values_mut().filter(|z| z.ppid == pid) {
        z.ppid = 1;
    }
    table.zombies.insert(pid, Zombie { ppid, pgid, status });
    if let Some(parent) = table.tasks.get_mut(&ppid) {
        let (code, st) = if status.signal != 0 {
            (signal::CLD_KILLED, status.signal)
        } else {
            (signal::CLD_EXITED, status.code)
        };
        post_sigchld(parent, pid, code, st);
    }
}

/// Tells `parent` about child `pid`: SIGCHLD with `code` (CLD_*) and `status`.
fn post_sigchld<P: Platform>(parent: &mut Task<P>, pid: u32, code: i32, status: i32) {
    let info = signal::SigInfo {
        signo: signal::SIGCHLD,
        code,
        pid,
        status,
        addr: 0,
    };
    signal::post(parent, info);
}

fn serve<P: Platform>(
    platform: &mut P,
    k: &mut Kernel,
    table: &mut Table<P>,
    pid: u32,
    req: Request,
) {
    match req {
        Request::Block => {
            if let Some(t) = table.tasks.get_mut(&pid) {
                t.state = RunState::Blocked;
            }
        }
        Request::Fork {
            stack,
            child_tid,
            parent_tid,
        } => {
            let child_pid = table.next_pid;
            let limit = k.config.pids_limit as usize;
            let result = if limit != 0 && table.tasks.len() >= limit {
                Err(crate::errno::EAGAIN)
            } else {
                fork(
                    platform,
                    table.tasks.get_mut(&pid).expect("forking task"),
                    child_pid,
                    stack,
                )
            };
            let parent = table.tasks.get_mut(&pid).expect("forking task");
            match result {
                Ok(mut child) => {
                    table.next_pid += 1;
                    parent.regs.rax = child_pid as u64;
                    if parent_tid != 0 {
                        let _ = parent.mm.copy_out(parent_tid, &child_pid.to_le_bytes());
                    }
                    if child_tid != 0 {
                        let _ = child.mm.copy_out(child_tid, &child_pid.to_le_bytes());
                        child.clear_child_tid = child_tid;
                    }
                    table.tasks.insert(child_pid, child);
                }
                Err(e) => parent.regs.rax = crate::errno::to_rax(Err(e)),
            }
        }
        Request::Exec(e) => {
            let t = table.tasks.get_mut(&pid).expect("exec'ing task");
            if let Err(err) = exec(platform, k, t, e) {
                t.regs.rax = crate::errno::to_rax(Err(err));
            }
        }
        Request::Wait {
            pid: which,
            status,
            options,
            info,
        } => wait(table, pid, which, status, options, info),
        Request::Kill { pid: target, sig } => {
            let r = kill(table, pid, target, sig).map(|()| 0);
            set_result(table, pid, r);
        }
        Request::SetPgid {
            pid: target,
            pgid: group,
        } => {
            let r = setpgid(table, pid, target, group).map(|()| 0);
            set_result(table, pid, r);
        }
        Request::ProcView => {
            let procs = table
                .tasks
                .iter()
                .filter(|(&p, _)| p != pid)
                .map(|(&p, t)| (p, crate::fsimpl::procfs::render(t)))
                .collect();
            k.proc_view = Some(crate::fsimpl::procfs::ProcView {
                for_pid: pid,
                procs,
            });
            if let Some(t) = table.tasks.get_mut(&pid) {
                t.state = RunState::Woken;
            }
        }
        Request::GetPgid { pid: target, sid } => {
            let r = match table.tasks.get(&target) {
                Some(o) if sid => Ok(o.sid as u64),
                Some(o) => Ok(o.pgid as u64),
                None => Err(ESRCH),
            };
            set_result(table, pid, r);
        }
    }
}

fn fork<P: Platform>(
    platform: &mut P,
    parent: &mut Task<P>,
    pid: u32,
    stack: u64,
) -> Result<Task<P>, Errno> {
    let space = platform.new_address_space()?;
    let mm = parent.mm.fork_into(space)?;
    let mut regs = parent.regs;
    regs.rax = 0;
    if stack != 0 {
        regs.rsp = stack;
    }
    Ok(Task {
        tid: pid,
        pid,
        ppid: parent.pid,
        regs,
        mm,
        ctx: platform.new_context()?,
        signals: signal::SignalState {
            pending: 0,
            saved_mask: None,
            ..parent.signals.clone()
        },
        exe_path: parent.exe_path.clone(),
        clear_child_tid: 0,
        robust_list: (0, 0),
        rlimits: parent.rlimits,
        fds: parent.fds.clone(),
        comm: parent.comm,
        cmdline: parent.cmdline.clone(),
        cloexec: parent.cloexec.clone(),
        cwd: parent.cwd.clone(),
        umask: parent.umask,
        pgid: parent.pgid,
        sid: parent.sid,
        exit: None,
        request: None,
        state: RunState::Running,
        wake_at: None,
        alarm: None,
        job: Default::default(),
    })
}

fn exec<P: Platform>(
    platform: &mut P,
    k: &mut Kernel,
    t: &mut Task<P>,
    e: Exec,
) -> Result<(), Errno> {
    let space = platform.new_address_space()?;
    let mut mm = Mm::new(space, k.mem.clone());
    let mut random = [0u8; 16];
    k.random_bytes(&mut random);
    use crate::image_cache::ExecSource;
    let ids = crate::kernel::SANDBOX_IDS;
    let loaded = match &e.image {
        ExecSource::Bytes { image, interp, .. } => loader::load(
            &mut mm,
            image,
            interp.as_deref(),
            &e.execfn,
            &e.argv,
            &e.envp,
            random,
            ids,
        ),
        ExecSource::Cached(image) => {
            loader::load_cached(&mut mm, image, &e.execfn, &e.argv, &e.envp, random, ids)
        }
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(err) => {
            mm.release();
            return Err(err);
        }
    };
    // (Only static programs are kept: a dynamic one's image includes its interpreter's.)
    if let ExecSource::Bytes {
        key: Some(key),
        interp: None,
        ..
    } = e.image
    {
        let mem = k.mem.clone();
        k.images.keep(&mem, key, &mut mm, loaded.layout);
    }
    // The point of no return: the old image goes.
    let mut old = core::mem::replace(&mut t.mm, mm);
    old.release();
    drop(old);
    t.regs = loaded.regs;
    t.comm = crate::kernel::comm_for(&e.exe_path);
    t.cmdline = crate::kernel::cmdline_of(&e.argv);
    t.exe_path = e.exe_path;
    // Close-on-exec descriptors close; caught signals go back to their default action.
    for fd in core::mem::take(&mut t.cloexec) {
        if let Some(of) = t.fds.get_mut(fd as usize).and_then(|f| f.take()) {
            crate::file::release(k.host, of);
        }
    }
    for a in t.signals.actions.iter_mut() {
        if a.handler != signal::SIG_IGN {
            *a = signal::SigAction::default();
        }
    }
    t.clear_child_tid = 0;
    t.robust_list = (0, 0);
    Ok(())
}

/// Linux's wait status word.
fn wait_status(s: ExitStatus) -> u32 {
    if s.signal != 0 {
        s.signal as u32 & 0x7f
    } else {
        (s.code as u32 & 0xff) << 8
    }
}

/// The `siginfo_t` waitid reports for child `pid`: SIGCHLD, CLD_EXITED/KILLED, pid, uid, status.
fn child_siginfo(pid: u32, s: ExitStatus) -> [u8; 128] {
    if s.signal != 0 {
        child_siginfo_for(pid, signal::CLD_KILLED, s.signal)
    } else {
        child_siginfo_for(pid, signal::CLD_EXITED, s.code)
    }
}

/// A waitid `siginfo_t` with `code` (CLD_*) and `st` (exit code or signal).
fn child_siginfo_for(pid: u32, code: i32, st: i32) -> [u8; 128] {
    let mut si = [0u8; 128];
    si[0..4].copy_from_slice(&signal::SIGCHLD.to_le_bytes());
    si[8..12].copy_from_slice(&code.to_le_bytes());
    si[16..20].copy_from_slice(&pid.to_le_bytes());
    si[20..24].copy_from_slice(&crate::kernel::SANDBOX_IDS[0].to_le_bytes());
    si[24..28].copy_from_slice(&st.to_le_bytes());
    si
}

fn wait<P: Platform>(
    table: &mut Table<P>,
    pid: u32,
    which: i64,
    status: u64,
    options: u64,
    info: Option<u64>,
) {
    const WUNTRACED: u64 = 2; // waitid's WSTOPPED
    const WEXITED: u64 = 4;
    const WCONTINUED: u64 = 8;
    const WNOWAIT: u64 = 0x0100_0000;
    let my_pgid = table.tasks.get(&pid).map(|t| t.pgid).unwrap_or(0);
    let matches = |cpid: u32, cpgid: u32| match which {
        -1 => true,
        0 => cpgid == my_pgid,
        w if w < -1 => cpgid as i64 == -w,
        w => cpid as i64 == w,
    };
    // wait4 always reports exits; waitid only with WEXITED.
    let exits = info.is_none() || options & WEXITED != 0;
    let zombie = table
        .zombies
        .iter()
        .find(|(&c, z)| exits && z.ppid == pid && matches(c, z.pgid))
        .map(|(&c, _)| c);
    // Children that may still report something (a zombie not asked for still counts).
    let live = table
        .tasks
        .values()
        .any(|c| c.ppid == pid && matches(c.pid, c.pgid))
        || table
            .zombies
            .iter()
            .any(|(&c, z)| z.ppid == pid && matches(c, z.pgid));
    // A live child's stop (WUNTRACED) or continue (WCONTINUED) not yet waited for.
    let job = table
        .tasks
        .values()
        .filter(|c| c.ppid == pid && matches(c.pid, c.pgid))
        .find_map(|c| match c.job.event {
            Some(signal::SIGCONT) if options & WCONTINUED != 0 => Some((c.pid, signal::SIGCONT)),
            Some(sig) if sig != signal::SIGCONT && c.job.stopped && options & WUNTRACED != 0 => {
                Some((c.pid, sig))
            }
            _ => None,
        });
    let mut collected = None;
    let t = table.tasks.get_mut(&pid).expect("waiting task");
    let r = if let (None, Some((c, event))) = (zombie, job) {
        let continued = event == signal::SIGCONT;
        let r = match info {
            Some(infop) if infop != 0 => {
                let code = if continued {
                    signal::CLD_CONTINUED
                } else {
                    signal::CLD_STOPPED
                };
                t.mm.copy_out(infop, &child_siginfo_for(c, code, event))
            }
            Some(_) => Ok(()),
            None if status != 0 => {
                let word: u32 = if continued {
                    0xffff
                } else {
                    (event as u32) << 8 | 0x7f
                };
                t.mm.copy_out(status, &word.to_le_bytes())
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
            Some(infop) if infop != 0 => t.mm.copy_out(infop, &child_siginfo(c, z.status)),
            Some(_) => Ok(()),
            None if status != 0 => t.mm.copy_out(status, &wait_status(z.status).to_le_bytes()),
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
            Some(infop) if infop != 0 => t.mm.copy_out(infop, &[0u8; 128]).map(|()| 0),
            _ => Ok(0),
        }
    } else {
        t.state = RunState::Blocked;
        return;
    };
    t.regs.rax = crate::errno::to_rax(r);
    if let Some(child) = collected.and_then(|c| table.tasks.get_mut(&c)) {
        child.job.event = None;
    }
}

fn set_result<P: Platform>(table: &mut Table<P>, pid: u32, r: Result<u64, Errno>) {
    table.tasks.get_mut(&pid).expect("requesting task").regs.rax = crate::errno::to_rax(r);
}

/// `setpgid(target, group)` by `caller` for itself or one of its children: the target must be
/// in the caller's session and not a session leader, and `group` must be the target itself or
/// an existing group of that session (Linux's rules; a child that has exec'd is not refused).
fn setpgid<P: Platform>(
    table: &mut Table<P>,
    caller: u32,
    target: u32,
    group: u32,
) -> Result<(), Errno> {
    let my_sid = table.tasks[&caller].sid;
    let child = table.tasks.get(&target).ok_or(ESRCH)?;
    if target != caller && child.ppid != caller {
        return Err(ESRCH);
    }
    if child.sid != my_sid || child.sid == child.pid {
        return Err(EPERM);
    }
    let group = if group == 0 { target } else { group };
    if group != target
        && !table
            .tasks
            .values()
            .any(|o| o.pgid == group && o.sid == my_sid)
    {
        return Err(EPERM);
    }
    table.tasks.get_mut(&target).expect("checked").pgid = group;
    note_progress();
    Ok(())
}

fn kill<P: Platform>(
    table: &mut Table<P>,
    sender: u32,
    target: i64,
    sig: i32,
) -> Result<(), Errno> {
    if !(0..=signal::NSIG as i32).contains(&sig) {
        return Err(crate::errno::EINVAL);
    }
    let targets: Vec<u32> = match target {
        t if t > 0 => table
            .tasks
            .keys()
            .copied()
            .filter(|&p| p as i64 == t)
            .collect(),
        // Process groups (0: the caller's, < -1: that group) and -1 (everyone but init).
        _ => table
            .tasks
            .keys()
            .copied()
            .filter(|&p| target == -1 && p != 1 || target < -1)
            .collect(),
    };
    // 0: the caller's own process group.
    let group = match target {
        0 => Some(table.tasks[&sender].pgid as i64),
        t if t < -1 => Some(-t),
        _ => None,
    };
    let targets: Vec<u32> = match group {
        Some(g) => table
            .tasks
            .iter()
            .filter(|(_, t)| t.pgid as i64 == g)
            .map(|(&p, _)| p)
            .collect(),
        None => targets,
    };
    if targets.is_empty() {
        return Err(ESRCH);
    }
    if sig == 0 {
        return Ok(());
    }
    for p in targets {
        if discarded_stop(table, &table.tasks[&p], sig) {
            continue;
        }
        let t = table.tasks.get_mut(&p).expect("target exists");
        signal::post(
            t,
            signal::SigInfo {
                signo: sig,
                code: signal::SI_USER,
                pid: sender,
                ..Default::default()
            },
        );
    }
    Ok(())
}
