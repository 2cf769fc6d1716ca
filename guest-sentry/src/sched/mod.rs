//! The task table and the scheduler: the task loop every platform runs (`run`: pick a task,
//! switch to its app, serve its event, and the fast path that keeps a task running while it
//! asks nothing of the others), requests a syscall makes of the scheduler, blocking, futex
//! wake-ups. By concern, as gVisor's `task_*.go`: [`clone`] (new threads and processes),
//! [`exec`], [`exit`] (exits and `wait`), [`signals`] (signals between tasks, job control).
//!
//! Tasks are threads, keyed by tid; what threads share is behind `Shared` handles in the task
//! ([`crate::kernel::Task`]). The Sentry serves one task's event at a time; threads of a
//! process take turns on its address space (each with its own platform context), and a task
//! switches out when it blocks, exits or has had its turn. Where the platform can
//! ([`Platform::PARALLEL`]: a stub process per address space), the apps of up to `--cpus`
//! processes run at the same time: one is started ([`App::Out`]) while the Sentry serves the
//! others, and its event is collected when it comes ([`App::Back`]); one that the Sentry has
//! something for (a signal, an exit, a stop, a sibling thread) is kicked back. A syscall
//! that must wait on a wait queue (a futex, a vfork child) sleeps until its waker; one that
//! waits for anything else (an empty pipe, a child still running) is dispatched again when
//! something may have changed.

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

mod clone;
mod exec;
mod exit;
mod signals;

use clone::*;
use exec::*;
use exit::*;
use signals::*;

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
    /// `getpriority(which, who)` (`set` None) or `setpriority(which, who, nice)` (`which`
    /// checked, `nice` clamped by the syscall layer).
    Priority {
        which: u32,
        who: u32,
        set: Option<i32>,
    },
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
    /// The files of close-on-exec descriptors: the process's POSIX locks on them go when the
    /// exec closes them, as at any close ([`crate::locks`]).
    pub cloexec_locks: Vec<crate::locks::FileKey>,
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

/// Where a task's app code is. On a platform that runs the apps of different processes at
/// the same time ([`Platform::PARALLEL`], `--cpus` above 1) the scheduler starts an app and
/// serves other tasks while it runs; elsewhere a task is always `Here`.
pub enum App {
    /// In the Sentry's hands: its registers and platform context are the Sentry's to use.
    Here,
    /// Running on its platform context ([`Context::start`]); its event not collected yet.
    /// Until it is, the Sentry leaves its registers, its context and its address space's
    /// mappings alone, and no other task of its address space runs. `kicked`: it was asked
    /// to come back ([`AddressSpace::kick`]); `since`: when it was started (CLOCK_MONOTONIC
    /// ns).
    Out { kicked: bool, since: u64 },
    /// Its event came ([`Context::finish`]) and waits to be served; until it is, no other task
    /// of its address space runs either.
    Back(Result<crate::platform::Event, Errno>),
}

/// Events a task runs before the scheduler looks at the others.
const SLICE: u32 = 64;

/// How long an app that makes no syscalls may keep the CPU from other ready tasks.
const SLICE_NS: u64 = 10_000_000;

const WNOHANG: u64 = 1;

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
    /// Tasks whose app runs ([`App::Out`]), in the order they were started.
    out: Vec<u32>,
    /// Tasks that may be [`App::Back`] (a superset: entries are checked, and pruned at the
    /// top of the loop).
    back: Vec<u32>,
    /// How many apps may run at once (1 where the platform runs one at a time).
    cpus: usize,
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
        out: Vec::new(),
        back: Vec::new(),
        cpus: if P::PARALLEL {
            (k.config.cpus as usize).max(1)
        } else {
            1
        },
    };
    table.tasks.insert(1, init);
    let mut current = 1u32;
    let mut last_ran = 1u32;
    let mut progress_seen = PROGRESS.load(Ordering::Relaxed);
    // When the platform was last asked to interrupt the app (CLOCK_MONOTONIC ns).
    let mut preempt_armed: Option<u64> = None;
    let mut slice = 0u32;
    // Set when the last step ended in an interrupt (preemption: a timer fell due or the
    // slice's time ran out): the next pick rotates, so a task a timer woke runs now rather
    // than after the spinner's 64 steps (each one more interrupt).
    let mut preempted = false;
    // Host signals the fast path took from the host but left for the top of the loop.
    let mut host_carried = 0u64;
    loop {
        // Sleepers whose time has come are ready to retry; due alarms send SIGALRM.
        let now = k.host.now(crate::host::Clock::Monotonic);
        // A preemption that fell due has fired (or is moot): none is pending any more.
        if preempt_armed.is_some_and(|a| a <= now) {
            preempt_armed = None;
        }
        // Apps running on their own whose events have come.
        if !table.out.is_empty() {
            collect_ready(&mut table);
        }
        if !table.back.is_empty() {
            let tasks = &table.tasks;
            table.back.retain(|tid| {
                tasks
                    .get(tid)
                    .is_some_and(|t| matches!(t.app, App::Back(_)))
            });
        }
        let restartable = table.syscalls.restartable;
        let mut alarms = Vec::new();
        let mut timers = Vec::new();
        for t in table.tasks.values_mut() {
            let due = t.tg.get().alarm.filter(|&(at, _)| at <= now);
            if let Some((_, interval)) = due {
                t.tg.lock().alarm = (interval > 0).then(|| (now + interval, interval));
                alarms.push(t.pid);
            }
            // Due POSIX timers (`timer_create`) of the process.
            let timer_due = t.tg.get().timers.earliest().is_some_and(|at| at <= now);
            if timer_due {
                let expired = t.tg.lock().timers.expire(now);
                timers.push((t.pid, expired));
            }
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
        for (pid, due) in timers {
            send_timer_signals(&mut k.futex, &mut table, pid, &due, restartable);
        }
        take_futex_wakeups(k, &mut table);
        let host_signals = k.host.take_signals() | core::mem::take(&mut host_carried);
        if host_signals != 0 {
            let fg = k.foreground_pgid;
            forward_host_signals(&mut k.futex, &mut table, host_signals, fg);
        }
        let tty_signals = k.ptys.take_signals();
        if !tty_signals.is_empty() {
            send_terminal_signals(&mut k.futex, &mut table, &tty_signals);
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
        if !table.out.is_empty() {
            kick_wanted(&mut table, now);
        }
        let rotate = slice >= SLICE || core::mem::take(&mut preempted);
        let Some(pid) = pick(&table, current, rotate) else {
            // Nothing can run: sleep until the earliest timeout. With none, only a signal
            // from outside (Ctrl-C, `kill`) can change anything: wait for one, as Linux would
            // (a sleep returns early when one arrives). Apps running on their own end the
            // wait with their events.
            let wait = next_timer(&table).map_or(1_000_000_000, |w| w.saturating_sub(now));
            if table.out.is_empty() {
                k.host.sleep(wait);
            } else {
                wait_out(&mut table, wait.min(1_000_000_000));
            }
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
        } else if matches!(t.app, App::Back(_)) {
            // Its app ran on its own and came back: serve what it came back with.
            let App::Back(event) = core::mem::replace(&mut t.app, App::Here) else {
                unreachable!()
            };
            if !serve_event(k, t, event, table.syscalls)? {
                preempted = true;
            }
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
                if let Some(prev) = table
                    .tasks
                    .get_mut(&last_ran)
                    .filter(|prev| !same_space && !matches!(prev.app, App::Out { .. }))
                {
                    prev.mm.lock().space.park();
                }
                last_ran = pid;
            }
            if table.cpus > 1 && others_ready && table.out.len() + 1 < table.cpus {
                // Others want the Sentry too, and a CPU is free for this app: it runs on its
                // own while they are served.
                start_app(&mut table, pid, now);
                continue;
            }
            if !table.out.is_empty() {
                // Other apps run: wait for this one's event or theirs, whichever comes first.
                if let Some(own) = run_app_among_others(k, &mut table, pid)? {
                    if !own {
                        preempted = true;
                    }
                }
            } else if let Some(due) = (table.cpus > 1).then(|| next_timer(&table)).flatten() {
                // A timer falls due while it may still run: the Sentry serves it on time and
                // the app runs on.
                let t = table.tasks.get_mut(&pid).expect("picked task exists");
                let alarm = t.tg.get().alarm;
                match run_app_timed(k, t, table.syscalls, due.saturating_sub(now), now)? {
                    None => table.out.push(pid),
                    Some(false) => preempted = true,
                    Some(true) if t.request.is_none() => ran_app = Some((alarm, others_ready)),
                    Some(true) => {}
                }
            } else {
                let t = table.tasks.get_mut(&pid).expect("picked task exists");
                let alarm = t.tg.get().alarm;
                if !run_app(k, t, table.syscalls)? {
                    preempted = true;
                } else if t.request.is_none() {
                    ran_app = Some((alarm, others_ready));
                }
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
        // (It switches synchronously: not while other apps run on their own.)
        if P::PARALLEL && !table.out.is_empty() {
            continue;
        }
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
        // The thread group's state the top would act on (an alarm set, a stop, a group exit,
        // a signal sent to the process) is looked at once: it changes only under the group's
        // lock, which bumps its generation.
        let (tg_generation, group_pending) = {
            let g = t.tg.get();
            if g.alarm != alarm || g.job.stopped || g.job.notify || g.group_exit.is_some() {
                continue;
            }
            (t.tg.generation(), g.pending.mask)
        };
        // Nothing about the task itself the top would act on (or `after_step` would serve).
        let quiet = |t: &Task<P>, k: &Kernel, slice: u32| {
            t.state == RunState::Running
                && t.exit.is_none()
                && t.request.is_none()
                && t.wake_at.is_none()
                && slice < slice_end
                && !k.futex.any_woken()
                && t.tg.generation() == tg_generation
                // (Nothing pending unblocked, the common case, needs no closer look.)
                && ((t.signals.pending | group_pending) & !t.signals.blocked == 0
                    || signal::deliverable(t).is_none())
        };
        if !quiet(t, k, slice) {
            continue;
        }
        // Where apps can run on their own, one with a deadline ahead runs on past it (the top
        // serves the deadline meanwhile).
        // (Constant false where the platform runs one app at a time: kvm's fast path does
        // not even test it.)
        let timed = P::PARALLEL && table.cpus > 1 && deadline.is_some();
        let mut left_out = false;
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
            let served = if timed {
                let now = k.host.now(crate::host::Clock::Monotonic);
                let wait = deadline.map_or(0, |d| d.saturating_sub(now));
                match run_app_timed(k, t, syscalls, wait, now)? {
                    Some(served) => served,
                    None => {
                        left_out = true;
                        break;
                    }
                }
            } else {
                run_app(k, t, syscalls)?
            };
            if !served {
                // An interrupt: the top decides what comes next (and re-arms preemption).
                preempted = true;
                break;
            }
            if !quiet(t, k, slice) {
                if let Some(status) = after_step(platform, k, &mut table, pid) {
                    return Ok(status);
                }
                break;
            }
        }
        if left_out {
            table.out.push(pid);
        }
    }
}

/// Whether a task other than `pid` could run.
fn others_ready<P: Platform>(table: &Table<P>, pid: u32) -> bool {
    table
        .tasks
        .iter()
        .any(|(&p, t)| p != pid && pickable(table, t))
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
        let mut mm = t.mm.lock_unobserved();
        t.ctx.switch(&mut mm.space, &mut t.regs)
    };
    serve_event(k, t, event, syscalls)
}

/// [`run_app`] on a platform whose apps can run on their own, waiting up to `timeout_ns` for
/// the event: `None` when it has not come ([`App::Out`] since `now`: the caller adds `t` to
/// the running apps).
fn run_app_timed<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    syscalls: Syscalls<P>,
    timeout_ns: u64,
    now: u64,
) -> Result<Option<bool>, RunError> {
    let event = {
        let mut mm = t.mm.lock_unobserved();
        if let Err(e) = t.ctx.start(&mut mm.space, &t.regs) {
            Err(e)
        } else if <P::AddressSpace as AddressSpace>::wait_any(&[&mm.space], timeout_ns).is_none() {
            t.app = App::Out {
                kicked: false,
                since: now,
            };
            return Ok(None);
        } else {
            t.ctx.finish(&mut mm.space, &mut t.regs)
        }
    };
    serve_event(k, t, event, syscalls).map(Some)
}

/// Serves the event `t`'s app came back with (see [`run_app`]).
#[inline(always)]
fn serve_event<P: Platform>(
    k: &mut Kernel,
    t: &mut Task<P>,
    event: Result<crate::platform::Event, Errno>,
    syscalls: Syscalls<P>,
) -> Result<bool, RunError> {
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

/// Starts task `pid`'s app on its own ([`App::Out`]). A platform context that cannot
/// start it comes back at once with the error, as `switch` would have returned it.
fn start_app<P: Platform>(table: &mut Table<P>, pid: u32, now: u64) {
    let t = table.tasks.get_mut(&pid).expect("started task exists");
    let started = {
        let mut mm = t.mm.lock_unobserved();
        t.ctx.start(&mut mm.space, &t.regs)
    };
    match started {
        Ok(()) => {
            t.app = App::Out {
                kicked: false,
                since: now,
            };
            table.out.push(pid);
        }
        Err(e) => {
            t.app = App::Back(Err(e));
            table.back.push(pid);
        }
    }
}

/// Runs `pid`'s app while others run on their own: starts it, then waits for whichever
/// app's event comes first. `Some` (as [`run_app`]'s result) when it was `pid`'s and has
/// been served; `None` when another's came first (it is served when picked; `pid` runs on).
fn run_app_among_others<P: Platform>(
    k: &mut Kernel,
    table: &mut Table<P>,
    pid: u32,
) -> Result<Option<bool>, RunError> {
    let now = k.host.now(crate::host::Clock::Monotonic);
    start_app(table, pid, now);
    let deadline = next_timer(table);
    let wait = deadline.map_or(1_000_000_000, |d| d.saturating_sub(now));
    if matches!(table.tasks[&pid].app, App::Out { .. }) {
        wait_out(table, wait.min(1_000_000_000));
    }
    let syscalls = table.syscalls;
    let t = table.tasks.get_mut(&pid).expect("started task exists");
    if !matches!(t.app, App::Back(_)) {
        return Ok(None);
    }
    let App::Back(event) = core::mem::replace(&mut t.app, App::Here) else {
        unreachable!()
    };
    serve_event(k, t, event, syscalls).map(Some)
}

/// Collects the event of running task `tid` ([`App::Out`] → [`App::Back`]), waiting for it
/// if it has not come yet.
fn collect<P: Platform>(table: &mut Table<P>, tid: u32) {
    table.out.retain(|&o| o != tid);
    let Some(t) = table.tasks.get_mut(&tid) else {
        return;
    };
    if !matches!(t.app, App::Out { .. }) {
        return;
    }
    let event = {
        let mut mm = t.mm.lock_unobserved();
        t.ctx.finish(&mut mm.space, &mut t.regs)
    };
    t.app = App::Back(event);
    table.back.push(tid);
}

/// Collects every running app whose event has come.
fn collect_ready<P: Platform>(table: &mut Table<P>) {
    // (A task is never removed while it runs; one that were would be dropped from the list.)
    let ready: Vec<u32> = table
        .out
        .iter()
        .copied()
        .filter(|tid| {
            table
                .tasks
                .get(tid)
                .is_none_or(|t| t.mm.get().space.event_ready())
        })
        .collect();
    for tid in ready {
        collect(table, tid);
    }
}

/// Waits up to `timeout_ns` for a running app's event and collects it.
fn wait_out<P: Platform>(table: &mut Table<P>, timeout_ns: u64) {
    table.out.retain(|tid| table.tasks.contains_key(tid));
    if table.out.is_empty() {
        return;
    }
    let got = {
        let mms: Vec<_> = table
            .out
            .iter()
            .map(|tid| table.tasks[tid].mm.get())
            .collect();
        let spaces: Vec<&P::AddressSpace> = mms.iter().map(|m| &m.space).collect();
        <P::AddressSpace as AddressSpace>::wait_any(&spaces, timeout_ns)
    };
    if let Some(i) = got {
        let tid = table.out[i];
        collect(table, tid);
    }
}

/// Brings a running task's app back now, its event dropped: the task is ending.
fn recall<P: Platform>(table: &mut Table<P>, tid: u32) {
    bring_back(table, tid);
    if let Some(t) = table.tasks.get_mut(&tid) {
        t.app = App::Here;
    }
}

/// Kicks running task `tid`'s app and collects its event ([`App::Back`]).
fn bring_back<P: Platform>(table: &mut Table<P>, tid: u32) {
    if let Some(t) = table.tasks.get(&tid) {
        if matches!(t.app, App::Out { .. }) {
            t.mm.get().space.kick();
            collect(table, tid);
        }
    }
}

/// Kicks back the running apps the Sentry has something for: a signal it can take, an exit,
/// or (once it has had a slice) another thread of its address space that waits to run. One
/// whose process was stopped is brought back at once: a stop is complete, and reported to
/// `wait`, only once no app of the process runs.
fn kick_wanted<P: Platform>(table: &mut Table<P>, now: u64) {
    let mut stopped = Vec::new();
    for i in 0..table.out.len() {
        let tid = table.out[i];
        let t = &table.tasks[&tid];
        let App::Out {
            kicked: false,
            since,
        } = t.app
        else {
            continue;
        };
        if t.tg.get().job.stopped {
            stopped.push(tid);
            continue;
        }
        let wanted = t.exit.is_some()
            || t.tg.get().group_exit.is_some()
            || signal::deliverable(t).is_some()
            || (now.saturating_sub(since) >= SLICE_NS
                && table
                    .tasks
                    .values()
                    .any(|o| o.tid != tid && o.mm.same(&t.mm) && ready(o)));
        if wanted {
            t.mm.get().space.kick();
            if let Some(t) = table.tasks.get_mut(&tid) {
                t.app = App::Out {
                    kicked: true,
                    since,
                };
            }
        }
    }
    for tid in stopped {
        bring_back(table, tid);
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

/// Whether `t` could run now (an app running on its own already does).
fn ready<P: Platform>(t: &Task<P>) -> bool {
    !matches!(t.state, RunState::Blocked | RunState::Queued)
        && !matches!(t.app, App::Out { .. })
        && !t.tg.get().job.stopped
}

/// Whether the scheduler may take `t` now: it could run, no other task of its address space
/// runs, and if it would run app code, a CPU is free for it.
fn pickable<P: Platform>(table: &Table<P>, t: &Task<P>) -> bool {
    if !ready(t) {
        return false;
    }
    if table.out.is_empty() {
        return true;
    }
    // (Back tasks hold their address space too: only they are served, when they are there.)
    let busy = table.out.iter().chain(&table.back).any(|&o| {
        o != t.tid
            && table.tasks.get(&o).is_some_and(|o| {
                matches!(o.app, App::Out { .. } | App::Back(_)) && o.mm.same(&t.mm)
            })
    });
    let serve_only = t.state == RunState::Woken || matches!(t.app, App::Back(_));
    !busy && (serve_only || table.out.len() < table.cpus)
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
    // (System V IPC waits: the syscall is made again and sees what it can do now.)
    for tid in k.futex.take_retried() {
        if let Some(t) = table.tasks.get_mut(&tid) {
            if t.state == RunState::Queued {
                t.state = RunState::Woken;
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

/// The earliest deadline of any task: a timed wait's end, an alarm or a POSIX timer that
/// signals (CLOCK_MONOTONIC ns).
fn next_timer<P: Platform>(table: &Table<P>) -> Option<u64> {
    let earlier = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    };
    table.tasks.values().fold(None, |n, t| {
        let g = t.tg.get();
        let group = earlier(g.alarm.map(|a| a.0), g.timers.earliest());
        earlier(earlier(n, t.wake_at), group)
    })
}

/// The next task to run: the current one while its slice lasts, else the next ready one in
/// tid order.
fn pick<P: Platform>(table: &Table<P>, current: u32, rotate: bool) -> Option<u32> {
    if !rotate {
        if let Some(t) = table.tasks.get(&current) {
            if pickable(table, t) {
                return Some(current);
            }
        }
    }
    let after = table
        .tasks
        .range(current + 1..)
        .chain(table.tasks.range(..=current));
    for (&p, t) in after {
        if pickable(table, t) {
            return Some(p);
        }
    }
    None
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
        Request::Priority { which, who, set } => {
            let r = priority(table, tid, which, who, set);
            set_result(table, tid, r);
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

/// `getpriority`/`setpriority` over the tasks `which`/`who` name (PRIO_PROCESS: a thread, 0
/// the caller; PRIO_PGRP: a process group, 0 the caller's; PRIO_USER: a uid, 0 the caller's:
/// every task runs as the sandbox's one user). Get: 20 - the lowest nice among them (the raw
/// syscall's form); set: all of them. ESRCH when none matches.
fn priority<P: Platform>(
    table: &mut Table<P>,
    tid: u32,
    which: u32,
    who: u32,
    set: Option<i32>,
) -> Result<u64, Errno> {
    const PRIO_PROCESS: u32 = 0;
    const PRIO_PGRP: u32 = 1;
    let uid = crate::kernel::SANDBOX_IDS[0];
    let pgid = match who {
        0 => table.tasks[&tid].tg.get().pgid,
        g => g,
    };
    let target = if who == 0 { tid } else { who };
    let user = if who == 0 { uid } else { who };
    let mut found = None::<i32>;
    for t in table.tasks.values_mut() {
        let hit = match which {
            PRIO_PROCESS => t.tid == target,
            PRIO_PGRP => t.tg.get().pgid == pgid,
            _ => user == uid,
        };
        if !hit {
            continue;
        }
        if let Some(n) = set {
            t.nice = n;
        }
        found = Some(found.map_or(t.nice, |f: i32| f.min(t.nice)));
    }
    match found {
        Some(_) if set.is_some() => Ok(0),
        Some(n) => Ok((20 - n) as u64),
        None => Err(ESRCH),
    }
}

fn set_result<P: Platform>(table: &mut Table<P>, tid: u32, r: Result<u64, Errno>) {
    table.tasks.get_mut(&tid).expect("requesting task").regs.rax = crate::errno::to_rax(r);
}
