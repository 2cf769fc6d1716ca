//! Processes and the scheduler: the task table, `fork`, `execve`, `wait4`, `kill`, exits and
//! blocking. The Sentry is single-threaded: it runs one task's events at a time and switches
//! when a task blocks, exits or has had its turn. A syscall that must wait (an empty pipe, a
//! child still running) is dispatched again when something may have changed.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::errno::{Errno, ECHILD, EPERM, ESRCH};
use crate::futex::Futexes;
use crate::host::ExitStatus;
use crate::kernel::{handle_event, Kernel, RunError, Syscalls, Task, TaskParts, ThreadGroup};
use crate::linux::{SigChld, Siginfo};
use crate::loader;
use crate::mm::Mm;
use crate::platform::{AddressSpace, Context, Platform};
use crate::shared::Shared;
use crate::signal;

/// What a syscall asks of the scheduler, which alone can see every task and the platform.
pub enum Request {
    /// The syscall cannot complete now: dispatch it again when another task made progress.
    Block,
    /// The task waits on a wait queue (a futex): only a wake, a signal or its timeout ends it.
    Queue,
    /// `fork`/`vfork`/`clone`/`clone3`: a new thread or process.
    Clone(CloneArgs),
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
    /// `tgkill(tgid, tid, sig)` (`tgid` None: `tkill(tid, sig)`).
    Tkill {
        tgid: Option<u32>,
        tid: u32,
        sig: i32,
    },
    /// `setpgid(pid, pgid)` (`pid` resolved: never 0).
    SetPgid { pid: u32, pgid: u32 },
    /// `getpgid(pid)` (`sid` false) or `getsid(pid)` of another process.
    GetPgid { pid: u32, sid: bool },
    /// The syscall needs other processes' `/proc` entries: render them, then run it again.
    ProcView,
}

/// What `clone` was asked for (checked by the syscall layer: flags it does not know, and
/// combinations Linux refuses, never get here).
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneArgs {
    pub flags: u64,
    /// The child's stack pointer (0: the parent's).
    pub stack: u64,
    /// `CLONE_SETTLS`: the child's fs base.
    pub tls: u64,
    /// `CLONE_PARENT_SETTID`: where the parent's memory gets the child's tid.
    pub parent_tid: u64,
    /// `CLONE_CHILD_SETTID` / `CLONE_CHILD_CLEARTID`: the child's tid word.
    pub child_tid: u64,
    /// The signal the parent gets when the child exits (a process only; 0: none).
    pub exit_signal: i32,
    /// `CLONE_PIDFD`: where the parent's memory gets a pidfd for the child (0: none).
    pub pidfd: u64,
}

pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_PTRACE: u64 = 0x2000;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_NEWNS: u64 = 0x20000;
pub const CLONE_SYSVSEM: u64 = 0x40000;
pub const CLONE_SETTLS: u64 = 0x80000;
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
pub const CLONE_DETACHED: u64 = 0x400000;
pub const CLONE_UNTRACED: u64 = 0x800000;
pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
pub const CLONE_IO: u64 = 0x8000_0000;

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
    /// Waits on a wait queue (a futex, a `vfork` child): only its waker, a signal or its
    /// timeout ends the wait; progress elsewhere does not retry it.
    Queued,
}

/// Events a task runs before the scheduler looks at the others.
const SLICE: u32 = 64;
/// How long an app that makes no syscalls may keep the CPU from other ready tasks.
const SLICE_NS: u64 = 10_000_000;
const WNOHANG: u64 = 1;

/// A process that has exited and that its parent has not waited for yet.
struct Zombie {
    ppid: u32,
    pgid: u32,
    status: ExitStatus,
    /// The signal its parent was sent at its exit (0: none; only `__WCLONE` waits see it).
    exit_signal: i32,
}

struct Table<P: Platform> {
    /// The syscall layer, as handed to [`run`].
    syscalls: Syscalls<P>,
    /// Every thread, by tid.
    tasks: BTreeMap<u32, Task<P>>,
    /// Exited processes, by pid.
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
        let mut alarms = Vec::new();
        for t in table.tasks.values_mut() {
            let mut g = t.tg.lock();
            if let Some((at, interval)) = g.alarm {
                if at <= now {
                    g.alarm = (interval > 0).then(|| (now + interval, interval));
                    alarms.push(t.pid);
                }
            }
            drop(g);
            if t.wake_at.is_some_and(|w| w <= now) {
                match t.state {
                    RunState::Blocked => t.state = RunState::Woken,
                    // Its futex wait timed out (the syscall layer says so when it runs again).
                    RunState::Queued => {
                        k.futex.cancel(t.tid);
                        t.state = RunState::Woken;
                    }
                    _ => {}
                }
            }
        }
        for pid in alarms {
            send_to_process(&mut k.futex, &mut table, pid, signal::SIGALRM, restartable);
        }
        take_futex_wakeups(k, &mut table);
        let host_signals = k.host.take_signals() | core::mem::take(&mut host_carried);
        if host_signals != 0 {
            let fg = k.foreground_pgid;
            forward_host_signals(&mut k.futex, &mut table, host_signals, fg);
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
        interrupt_waits(&mut k.futex, &mut table);
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
            // Another process's app is about to run: the one that ran last waits from now on
            // (retrying a blocked task's syscall above runs no app code and parks nothing; a
            // thread of the same address space takes over its stub).
            if last_ran != pid {
                let same_space = table.tasks.get(&last_ran).is_some_and(|prev| {
                    table
                        .tasks
                        .get(&pid)
                        .is_some_and(|next| next.mm.same(&prev.mm))
                });
                if let Some(prev) = table.tasks.get_mut(&last_ran).filter(|_| !same_space) {
                    prev.mm.lock().space.park();
                }
                last_ran = pid;
            }
            let t = table.tasks.get_mut(&pid).expect("picked task exists");
            let alarm = t.tg.get().alarm;
            if run_app(k, t, table.syscalls)? && t.request.is_none() {
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
        let quiet = |t: &Task<P>, k: &Kernel, slice: u32| {
            t.state == RunState::Running
                && t.exit.is_none()
                && t.request.is_none()
                && t.wake_at.is_none()
                && slice < slice_end
                && !k.futex.any_woken()
                && {
                    let g = t.tg.get();
                    g.alarm == alarm && !g.job.stopped && !g.job.notify && g.group_exit.is_none()
                }
                && signal::deliverable(t).is_none()
        };
        if !quiet(t, k, slice) {
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
            if !run_app(k, t, syscalls)? {
                // An interrupt: the top decides what comes next (and re-arms preemption).
                break;
            }
            if !quiet(t, k, slice) {
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
    table.tasks.iter().any(|(&p, t)| p != pid && ready(t))
}

/// Runs `t`'s app until its next event and handles it. False when the event was an interrupt
/// (the scheduler's turn). A task (other than init) whose platform context broke is killed.
#[inline(always)] // (into the fast path: no call, no frame of its own)
fn run_app<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    syscalls: Syscalls<P>,
) -> Result<bool, RunError> {
    let event = {
        let mut mm = t.mm.lock();
        t.ctx.switch(&mut mm.space, &mut t.regs)
    };
    match event {
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
        Err(e) if t.pid == 1 => Err(RunError::Platform(e)),
        Err(e) => {
            k.log(format_args!(
                "process {} lost its platform context (errno {}): killed",
                t.pid, e.0
            ));
            signal::exit_group(
                t,
                ExitStatus {
                    code: 0,
                    signal: signal::SIGKILL,
                },
            );
            Ok(true)
        }
    }
}

/// What follows a task's step: the request it made, exits (the task itself, or any the
/// request killed), futex wake-ups, stops and continues, and waits that a signal interrupts.
/// The sandbox's status once init has exited.
fn after_step<P: Platform>(
    platform: &mut P,
    k: &mut Kernel,
    table: &mut Table<P>,
    tid: u32,
) -> Option<ExitStatus> {
    if let Some(req) = table.tasks.get_mut(&tid).and_then(|t| t.request.take()) {
        serve(platform, k, table, tid, req);
    }
    continue_after_exit(k, table);
    take_futex_wakeups(k, table);
    notify_job_changes(table);
    if let Some(status) = table.done.take() {
        return Some(status);
    }
    interrupt_waits(&mut k.futex, table);
    None
}

/// Whether `t` could run now.
fn ready<P: Platform>(t: &Task<P>) -> bool {
    !matches!(t.state, RunState::Blocked | RunState::Queued) && !t.tg.get().job.stopped
}

/// Tasks a futex wake ended the wait of run again; their `futex` returns 0.
fn take_futex_wakeups<P: Platform>(k: &mut Kernel, table: &mut Table<P>) {
    if !k.futex.any_woken() {
        return;
    }
    for tid in k.futex.take_woken() {
        if let Some(t) = table.tasks.get_mut(&tid) {
            if t.state == RunState::Queued {
                t.state = RunState::Running;
                t.wake_at = None;
                t.regs.rax = 0;
            }
        }
    }
}

/// The threads of process `pid`, by tid.
fn threads_of<P: Platform>(table: &Table<P>, pid: u32) -> Vec<u32> {
    table
        .tasks
        .iter()
        .filter(|(_, t)| t.pid == pid)
        .map(|(&tid, _)| tid)
        .collect()
}

/// Any thread of process `pid` (the leader while it lives).
fn any_thread<P: Platform>(table: &Table<P>, pid: u32) -> Option<u32> {
    if table.tasks.get(&pid).is_some_and(|t| t.pid == pid) {
        return Some(pid);
    }
    table
        .tasks
        .iter()
        .find(|(_, t)| t.pid == pid)
        .map(|(&tid, _)| tid)
}

/// The thread of process `pid` that a signal `sig` sent to the process goes to: one that
/// does not block it (the leader first), else the leader (it stays pending for the process).
fn signal_target<P: Platform>(table: &Table<P>, pid: u32, sig: i32) -> Option<u32> {
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
fn send_to_process<P: Platform>(
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

/// Host signals for the sandbox (bit n = signal n): the terminal's SIGINT and SIGQUIT go to
/// the foreground process group (init's unless a shell moved it with `TIOCSPGRP`), and anything
/// else (SIGTERM, SIGHUP sent to `vmm`) to init, as a container runtime forwards them.
fn forward_host_signals<P: Platform>(
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

/// The earliest deadline of any task: a timed wait's end or an alarm (CLOCK_MONOTONIC ns).
fn next_timer<P: Platform>(table: &Table<P>) -> Option<u64> {
    let earlier = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    };
    table.tasks.values().fold(None, |n, t| {
        earlier(earlier(n, t.wake_at), t.tg.get().alarm.map(|a| a.0))
    })
}

/// Waiting tasks with a signal to handle stop waiting. A signal sent to a thread interrupts
/// that thread; one sent to a process interrupts one of its threads that does not block it,
/// and none when such a thread is running anyway (it takes the signal on its way back to the
/// app).
fn interrupt_waits<P: Platform>(futex: &mut Futexes, table: &mut Table<P>) {
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
fn interrupt_wait<P: Platform>(futex: &mut Futexes, t: &mut Task<P>, restartable: fn(u64) -> bool) {
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
    if act.flags & signal::SA_RESTART != 0 && restartable(t.regs.orig_rax) {
        t.regs.rax = t.regs.orig_rax;
        t.regs.rip = t.regs.rip.wrapping_sub(2);
    } else {
        t.regs.rax = crate::errno::to_rax(Err(crate::errno::EINTR));
    }
}

/// The next task to run: the current one while its slice lasts, else the next ready one in
/// tid order.
fn pick<P: Platform>(table: &Table<P>, current: u32, rotate: bool) -> Option<u32> {
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
fn orphaned<P: Platform>(table: &Table<P>, pgid: u32) -> bool {
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
fn discarded_stop<P: Platform>(table: &Table<P>, t: &Task<P>, sig: i32) -> bool {
    matches!(sig, signal::SIGTSTP | signal::SIGTTIN | signal::SIGTTOU)
        && t.sighand.get()[(sig - 1) as usize].handler == signal::SIG_DFL
        && orphaned(table, t.tg.get().pgid)
}

/// Takes every thread that exited out of the table, and every thread of a group that is
/// exiting as a whole; a process whose last thread went is reaped (the sandbox is done when
/// init is).
fn continue_after_exit<P: Platform>(k: &mut Kernel, table: &mut Table<P>) {
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
fn exit_thread<P: Platform>(k: &mut Kernel, table: &mut Table<P>, mut t: Task<P>) {
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
fn release_task<P: Platform>(k: &Kernel, t: Task<P>) {
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
fn release_vfork_parent<P: Platform>(table: &mut Table<P>, child: &mut Task<P>) {
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
fn post_sigchld<P: Platform>(parent: &mut Task<P>, sig: i32, pid: u32, code: i32, status: i32) {
    let info = signal::SigInfo {
        signo: sig,
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
    tid: u32,
    req: Request,
) {
    match req {
        Request::Block => {
            if let Some(t) = table.tasks.get_mut(&tid) {
                t.state = RunState::Blocked;
            }
        }
        Request::Queue => {
            if let Some(t) = table.tasks.get_mut(&tid) {
                t.state = RunState::Queued;
            }
        }
        Request::Clone(args) => {
            let child_tid = table.next_pid;
            let limit = k.config.pids_limit as usize;
            let result = if limit != 0 && table.tasks.len() >= limit {
                Err(crate::errno::EAGAIN)
            } else {
                let ppid_of_child = parent_of_new(table, tid, args.flags);
                clone(
                    platform,
                    k,
                    table.tasks.get_mut(&tid).expect("cloning task"),
                    child_tid,
                    ppid_of_child,
                    args,
                )
            };
            let parent = table.tasks.get_mut(&tid).expect("cloning task");
            match result {
                Ok(mut child) => {
                    table.next_pid += 1;
                    parent.regs.rax = child_tid as u64;
                    // The tid words: the parent's first (with CLONE_VM both are the same memory).
                    if args.flags & CLONE_PARENT_SETTID != 0 {
                        let _ = parent.mm.lock().write_obj(args.parent_tid, &child_tid);
                    }
                    if args.flags & CLONE_CHILD_SETTID != 0 {
                        let _ = child.mm.lock().write_obj(args.child_tid, &child_tid);
                    }
                    if args.flags & CLONE_CHILD_CLEARTID != 0 {
                        child.clear_child_tid = args.child_tid;
                    }
                    if args.flags & CLONE_PIDFD != 0 {
                        // A pidfd for the child in the parent's table (close-on-exec, as
                        // Linux makes it), its number at `pidfd`.
                        let of = alloc::rc::Rc::new(crate::file::OpenFile::new(
                            crate::file::File::PidFd(child_tid),
                            false,
                        ));
                        let limit = parent.tg.get().rlimits[7].cur;
                        let fd = parent.files.lock().alloc(0, limit, of);
                        if let Some(fd) = fd {
                            parent.files.lock().cloexec.insert(fd);
                            let _ = parent.mm.lock().write_obj(args.pidfd, &(fd as i32));
                        }
                    }
                    if args.flags & CLONE_VFORK != 0 {
                        child.vfork_parent = Some(tid);
                        parent.vfork_child = Some(child_tid);
                        parent.state = RunState::Queued;
                    }
                    table.tasks.insert(child_tid, child);
                }
                Err(e) => parent.regs.rax = crate::errno::to_rax(Err(e)),
            }
        }
        Request::Exec(e) => exec_request(platform, k, table, tid, e),
        Request::Wait {
            pid: which,
            status,
            options,
            info,
        } => wait(table, tid, which, status, options, info),
        Request::Kill { pid: target, sig } => {
            let r = kill(table, tid, target, sig).map(|()| 0);
            set_result(table, tid, r);
        }
        Request::Tkill {
            tgid,
            tid: target,
            sig,
        } => {
            let r = tkill(table, tid, tgid, target, sig).map(|()| 0);
            set_result(table, tid, r);
        }
        Request::SetPgid {
            pid: target,
            pgid: group,
        } => {
            let r = setpgid(table, tid, target, group).map(|()| 0);
            set_result(table, tid, r);
        }
        Request::ProcView => {
            let me = table.tasks.get(&tid).map_or(0, |t| t.pid);
            let mut procs = BTreeMap::new();
            let mut tids: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
            for (&ttid, t) in &table.tasks {
                tids.entry(t.pid).or_default().push(ttid);
                if t.pid != me && !procs.contains_key(&t.pid) {
                    procs.insert(t.pid, crate::fsimpl::procfs::render(t));
                }
            }
            k.proc_view = Some(crate::fsimpl::procfs::ProcView {
                for_pid: me,
                procs,
                tids,
            });
            if let Some(t) = table.tasks.get_mut(&tid) {
                t.state = RunState::Woken;
            }
        }
        Request::GetPgid { pid: target, sid } => {
            let r = match any_thread(table, target) {
                Some(o) if sid => Ok(table.tasks[&o].tg.get().sid as u64),
                Some(o) => Ok(table.tasks[&o].tg.get().pgid as u64),
                None => Err(ESRCH),
            };
            set_result(table, tid, r);
        }
    }
}

/// The parent process of a task `tid` creates with `flags`: itself, or with `CLONE_PARENT` or
/// `CLONE_THREAD` its own parent.
fn parent_of_new<P: Platform>(table: &Table<P>, tid: u32, flags: u64) -> u32 {
    let t = &table.tasks[&tid];
    if flags & (CLONE_PARENT | CLONE_THREAD) != 0 {
        t.tg.get().ppid
    } else {
        t.pid
    }
}

/// A new task made from `parent` by `clone`: each part shared or copied by its flag.
fn clone<P: Platform>(
    platform: &mut P,
    k: &mut Kernel,
    parent: &mut Task<P>,
    tid: u32,
    ppid: u32,
    args: CloneArgs,
) -> Result<Task<P>, Errno> {
    let f = args.flags;
    let mm = if f & CLONE_VM != 0 {
        parent.mm.share()
    } else {
        let space = platform.new_address_space()?;
        Shared::new(parent.mm.lock().fork_into(space)?)
    };
    let ctx = platform.new_context()?;
    let mut regs = parent.regs;
    regs.rax = 0;
    if args.stack != 0 {
        regs.rsp = args.stack;
    }
    if f & CLONE_SETTLS != 0 {
        regs.fs_base = args.tls;
    }
    let thread = f & CLONE_THREAD != 0;
    let tg = if thread {
        parent.tg.share()
    } else {
        let g = parent.tg.get();
        Shared::new(ThreadGroup {
            ppid,
            pgid: g.pgid,
            sid: g.sid,
            rlimits: g.rlimits,
            alarm: None,
            job: Default::default(),
            pending: Default::default(),
            group_exit: None,
            leader_exit: None,
            exe_path: g.exe_path.clone(),
            cmdline: g.cmdline.clone(),
            threads: 0,
            // CLONE_PARENT: the new process is its parent's sibling, and its parent is told
            // of its exit as of the caller's (Linux ignores the signal asked for).
            exit_signal: if f & CLONE_PARENT != 0 {
                g.exit_signal
            } else {
                args.exit_signal
            },
        })
    };
    let mut child: Task<P> = Task::new(TaskParts {
        tid,
        pid: if thread { parent.pid } else { tid },
        regs,
        mm,
        ctx,
        files: if f & CLONE_FILES != 0 {
            parent.files.share()
        } else {
            parent.files.copy()
        },
        fs: if f & CLONE_FS != 0 {
            parent.fs.share()
        } else {
            parent.fs.copy()
        },
        sighand: if f & CLONE_SIGHAND != 0 {
            parent.sighand.share()
        } else {
            parent.sighand.copy()
        },
        tg,
        blocked: parent.signals.blocked,
        // A new thread on its own stack has no alternate stack (Linux clears it when the
        // memory is shared).
        altstack: if f & CLONE_VM != 0 && f & CLONE_VFORK == 0 {
            (0, 0, false)
        } else {
            parent.signals.altstack
        },
        comm: parent.comm,
    });
    // The new task's FPU state is the parent's at the clone.
    let fx = {
        let mut m = parent.mm.lock();
        parent.ctx.fpu_state(&mut m.space)
    };
    if let Ok(fx) = fx {
        let mut m = child.mm.lock();
        let _: Result<(), Errno> = child.ctx.set_fpu_state(&mut m.space, &fx);
    }
    let _ = k;
    Ok(child)
}

/// `execve` by thread `tid`: the other threads end, the caller takes the leader's tid, then
/// the program is replaced (or the exec fails and the caller goes on alone... as Linux's
/// point of no return comes before the other threads go, an exec that fails keeps them).
fn exec_request<P: Platform>(
    platform: &mut P,
    k: &mut Kernel,
    table: &mut Table<P>,
    tid: u32,
    e: Exec,
) {
    let t = table.tasks.get_mut(&tid).expect("exec'ing task");
    let pid = t.pid;
    let r = exec(platform, k, t, e);
    if let Err(err) = r {
        t.regs.rax = crate::errno::to_rax(Err(err));
        return;
    }
    // The new image runs alone in the process, under the process's id.
    for other in threads_of(table, pid) {
        if other == tid {
            continue;
        }
        let mut o = table.tasks.remove(&other).expect("thread exists");
        k.futex.cancel(other);
        o.tg.lock().threads -= 1;
        release_vfork_parent(table, &mut o);
        release_task(k, o);
    }
    let mut t = table.tasks.remove(&tid).expect("exec'ing task");
    t.tid = pid;
    t.exit = None;
    t.tg.lock().leader_exit = None;
    release_vfork_parent(table, &mut t);
    table.tasks.insert(pid, t);
}

fn exec<P: Platform>(
    platform: &mut P,
    k: &mut Kernel,
    t: &mut Task<P>,
    e: Exec,
) -> Result<(), Errno> {
    let ctx = platform.new_context()?;
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
    // The point of no return: the old image goes (with its last holder: a vfork parent or
    // other threads may still hold it).
    let old = core::mem::replace(&mut t.mm, Shared::new(mm));
    if old.sole() {
        old.lock().release();
    }
    drop(old);
    // A new context: the old one's FPU state belongs to the old image.
    t.ctx = ctx;
    t.regs = loaded.regs;
    t.comm = crate::kernel::comm_for(&e.exe_path);
    {
        let mut g = t.tg.lock();
        g.cmdline = crate::kernel::cmdline_of(&e.argv);
        g.exe_path = e.exe_path;
    }
    // Descriptors and handlers another process shared become this one's own; close-on-exec
    // descriptors close; caught signals go back to their default action.
    if !t.files.sole() {
        t.files = t.files.copy();
    }
    let cloexec = core::mem::take(&mut t.files.lock().cloexec);
    for fd in cloexec {
        let of = t
            .files
            .lock()
            .fds
            .get_mut(fd as usize)
            .and_then(|f| f.take());
        if let Some(of) = of {
            crate::file::release(k.host, of);
        }
    }
    if !t.sighand.sole() {
        t.sighand = t.sighand.copy();
    }
    for a in t.sighand.lock().iter_mut() {
        if a.handler != signal::SIG_IGN {
            *a = signal::SigAction::default();
        }
    }
    t.signals.altstack = (0, 0, false);
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
fn child_siginfo(pid: u32, s: ExitStatus) -> Siginfo {
    if s.signal != 0 {
        child_siginfo_for(pid, signal::CLD_KILLED, s.signal)
    } else {
        child_siginfo_for(pid, signal::CLD_EXITED, s.code)
    }
}

/// A waitid `siginfo_t` with `code` (CLD_*) and `st` (exit code or signal).
fn child_siginfo_for(pid: u32, code: i32, st: i32) -> Siginfo {
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

fn wait<P: Platform>(
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

fn set_result<P: Platform>(table: &mut Table<P>, tid: u32, r: Result<u64, Errno>) {
    table.tasks.get_mut(&tid).expect("requesting task").regs.rax = crate::errno::to_rax(r);
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
fn user_info<P: Platform>(table: &Table<P>, sender: u32, sig: i32) -> signal::SigInfo {
    signal::SigInfo {
        signo: sig,
        code: signal::SI_USER,
        pid: table.tasks.get(&sender).map_or(0, |t| t.pid),
        ..Default::default()
    }
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
fn tkill<P: Platform>(
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
