//! Signal state: dispositions (`rt_sigaction`), the blocked mask (`rt_sigprocmask`), and what
//! happens when the app raises a synchronous signal (fault, bad instruction).
//!
//! Handlers run through Linux-compatible `rt_sigframe`s on the app's stack (or alternate
//! stack) and return with `rt_sigreturn`; signals are delivered on the way back to the app.

use core::mem::{offset_of, size_of};

use crate::errno::{Errno, EFAULT};
use crate::host::ExitStatus;
use crate::kernel::{Kernel, Task};
use crate::linux::{
    RtSigframe, SigChld, SigFault, SigTimer, Sigcontext, Siginfo, StackT, Ucontext,
};
use crate::platform::{Context, Platform, FXSAVE_SIZE};
use crate::xsave;
use alloc::vec::Vec;

pub use crate::signo::{
    SIGALRM, SIGBUS, SIGCHLD, SIGCONT, SIGFPE, SIGILL, SIGINT, SIGKILL, SIGPIPE, SIGQUIT, SIGSEGV,
    SIGSTOP, SIGTRAP, SIGTSTP, SIGTTIN, SIGTTOU,
};
pub const NSIG: usize = 64;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub use crate::linux::SigAction;

/// A thread's own signal state. Dispositions are the thread group's ([`crate::kernel::SigHand`],
/// shared by `CLONE_SIGHAND`), and so are signals sent to the process as a whole
/// ([`crate::kernel::ThreadGroup::pending`]).
#[derive(Clone, Debug)]
pub struct SignalState {
    pub blocked: u64,
    /// Signals sent to this thread but not yet delivered, and what each one carries.
    pub pending: u64,
    pub info: [SigInfo; NSIG],
    /// The mask `rt_sigsuspend` replaced, restored when its signal's handler returns.
    pub saved_mask: Option<u64>,
    /// `sigaltstack`: (base, size, enabled).
    pub altstack: (u64, u64, bool),
    /// When a signal last became pending (a [`crate::events::stamp`]: a signalfd's wake-ups).
    pub posted: u64,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            blocked: 0,
            pending: 0,
            info: [SigInfo::default(); NSIG],
            saved_mask: None,
            altstack: (0, 0, false),
            posted: 0,
        }
    }
}

/// Signals sent to a process (any of its threads that does not block one takes it).
#[derive(Clone, Debug)]
pub struct Pending {
    pub mask: u64,
    pub info: [SigInfo; NSIG],
    /// When a signal last became pending (a [`crate::events::stamp`]).
    pub posted: u64,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            mask: 0,
            info: [SigInfo::default(); NSIG],
            posted: 0,
        }
    }
}

/// Ends the task's whole thread group with `status` (a fatal signal, `exit_group`): this
/// thread now, the others when the scheduler next looks. The first cause wins.
pub fn exit_group<P: Platform>(task: &mut Task<P>, status: ExitStatus) {
    let mut g = task.tg.lock();
    let status = *g.group_exit.get_or_insert(status);
    drop(g);
    task.exit = Some(status);
    crate::sched::note_progress();
}

/// The signals pending for `task`: its own and its process's.
pub fn pending_mask<P: Platform>(task: &Task<P>) -> u64 {
    task.signals.pending | task.tg.get().pending.mask
}

/// Takes pending `sig` (the thread's own first, then the process's): what it carries. A POSIX
/// timer's signal leaves its overrun count with the timer (`timer_getoverrun`).
/// What pending `sig` carries (the thread's own first, then the process's), left pending.
pub fn peek_pending<P: Platform>(task: &Task<P>, sig: i32) -> SigInfo {
    let idx = (sig - 1) as usize;
    if task.signals.pending & bit(sig) != 0 {
        task.signals.info[idx]
    } else {
        task.tg.get().pending.info[idx]
    }
}

pub fn take_pending<P: Platform>(task: &mut Task<P>, sig: i32) -> SigInfo {
    let idx = (sig - 1) as usize;
    let info = if task.signals.pending & bit(sig) != 0 {
        task.signals.pending &= !bit(sig);
        task.signals.info[idx]
    } else {
        let mut g = task.tg.lock();
        g.pending.mask &= !bit(sig);
        g.pending.info[idx]
    };
    if info.code == SI_TIMER {
        task.tg.lock().timers.taken(info.timerid, info.overrun);
    }
    info
}

/// POSIX timer `timerid` expired `count` times more: if the signal it sent before is still
/// pending (for the thread when `thread`, else for the process), that signal's overrun count
/// grows and true is returned (no second signal is sent, as on Linux).
pub fn timer_overrun<P: Platform>(
    task: &mut Task<P>,
    thread: bool,
    signo: i32,
    timerid: i32,
    count: u64,
) -> bool {
    let idx = (signo - 1) as usize;
    let bump = |mask: u64, info: &mut SigInfo| {
        let mine = mask & bit(signo) != 0 && info.code == SI_TIMER && info.timerid == timerid;
        if mine {
            info.overrun = crate::posix_timers::add_overruns(info.overrun, count);
        }
        mine
    };
    if thread {
        bump(task.signals.pending, &mut task.signals.info[idx])
    } else {
        let mut g = task.tg.lock();
        let mask = g.pending.mask;
        bump(mask, &mut g.pending.info[idx])
    }
}

/// Bit of signal `sig` in a mask.
pub const fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals whose default action stops the process.
const STOP_SIGNALS: u64 = bit(SIGSTOP) | bit(SIGTSTP) | bit(SIGTTIN) | bit(SIGTTOU);

/// Whether `sig`'s default action is to stop the process.
pub fn default_stop(sig: i32) -> bool {
    (1..=NSIG as i32).contains(&sig) && STOP_SIGNALS & bit(sig) != 0
}

/// Job control: whether the process is stopped, and the last stop or continue that its parent
/// has yet to collect (`wait` with WUNTRACED / WCONTINUED) and to be told of (SIGCHLD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobState {
    pub stopped: bool,
    /// The stopping signal, or SIGCONT for a continue, until the parent waits for it.
    pub event: Option<i32>,
    /// The parent is still to be sent SIGCHLD for `event`.
    pub notify: bool,
}

impl JobState {
    fn stop(&mut self, sig: i32) {
        self.stopped = true;
        self.event = Some(sig);
        self.notify = true;
    }
}

/// Signals that can be neither caught nor blocked.
pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

/// The signal Linux sends for CPU exception `vector` in user mode.
pub fn for_exception(vector: u8) -> i32 {
    match vector {
        0 | 16 | 19 => SIGFPE, // #DE, #MF, #XM
        1 | 3 => SIGTRAP,      // #DB, #BP
        6 => SIGILL,           // #UD
        17 => SIGBUS,          // #AC
        _ => SIGSEGV,          // #GP, #SS, #NP, #BR, ...
    }
}

/// The name of signal `sig` for log lines (`"SIGSEGV"`; `"SIGRT"` for a real-time one).
pub fn name(sig: i32) -> &'static str {
    crate::signo::name(sig).unwrap_or("SIGRT")
}

/// What a handler learns about a signal (`siginfo_t`'s fields that we fill).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub code: i32,
    /// Sender (SI_USER) or child (SIGCHLD).
    pub pid: u32,
    /// Exit code or signal of a child (SIGCHLD).
    pub status: i32,
    /// Fault address (SIGSEGV, SIGBUS).
    pub addr: u64,
    /// A POSIX timer's signal (`SI_TIMER`): the timer, and expirations since it was sent.
    pub timerid: i32,
    pub overrun: i32,
    /// `si_value` (a POSIX timer's `sigev_value`).
    pub value: u64,
}

impl SigInfo {
    /// The `siginfo_t` a handler, `rt_sigtimedwait` or `waitid` reads: the `_timer` view for a
    /// timer's signal, `_sigfault` for a fault the kernel raised, else `_kill`/`_sigchld`.
    pub fn to_linux(&self) -> Siginfo {
        let sig = self.signo;
        let fields = if self.code == SI_TIMER {
            zerocopy::transmute!(SigTimer {
                si_timerid: self.timerid,
                si_overrun: self.overrun,
                si_value: self.value,
                ..Default::default()
            })
        } else if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE)
            && self.code > 0
        {
            zerocopy::transmute!(SigFault {
                si_addr: self.addr,
                ..Default::default()
            })
        } else {
            zerocopy::transmute!(SigChld {
                si_pid: self.pid as i32,
                si_uid: crate::kernel::SANDBOX_IDS[0],
                si_status: self.status,
                ..Default::default()
            })
        };
        Siginfo {
            si_signo: sig,
            si_code: self.code,
            fields,
            ..Default::default()
        }
    }
}

pub const SI_USER: i32 = 0;
/// A POSIX timer's signal.
pub use crate::posix_timers::SI_TIMER;
/// `tkill`/`tgkill` (glibc's cancellation handler checks for it).
pub const SI_TKILL: i32 = -6;
pub const SI_KERNEL: i32 = 0x80;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;
/// `sa_flags`: no SIGCHLD when a child stops or continues.
pub const SA_NOCLDSTOP: u64 = linux_raw_sys::general::SA_NOCLDSTOP as u64;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;

/// `sa_flags`: restart an interrupted syscall after the handler instead of failing it.
pub const SA_RESTART: u64 = linux_raw_sys::general::SA_RESTART as u64;
const SA_NODEFER: u64 = linux_raw_sys::general::SA_NODEFER as u64;
const SA_RESETHAND: u64 = linux_raw_sys::general::SA_RESETHAND as u64;
const SA_ONSTACK: u64 = linux_raw_sys::general::SA_ONSTACK as u64;
const SA_RESTORER: u64 = 0x0400_0000;
/// `stack_t.ss_flags`.
pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;

/// Signals whose default action is to do nothing (SIGCONT's is to continue, done when it is
/// sent).
fn default_ignored(sig: i32) -> bool {
    matches!(sig, 17 | 18 | 23 | 28) // CHLD CONT URG WINCH
}

/// Sends `info.signo` to the task's process (`kill`, SIGCHLD, alarms, job control): any thread
/// not blocking it takes it. See [`post_to`].
pub fn post<P: Platform>(task: &mut Task<P>, info: SigInfo) {
    post_to(task, info, false)
}

/// Sends `info.signo` to this thread alone (`tgkill`, faults, SIGPIPE).
pub fn post_thread<P: Platform>(task: &mut Task<P>, info: SigInfo) {
    post_to(task, info, true)
}

/// Sends `info.signo`: handled signals become pending (delivered on the way back to the app),
/// ignored ones vanish, and the others take their default action (terminate the process, or
/// stop it). SIGCONT continues a stopped process whatever its disposition and cancels pending
/// stops; a stop cancels a pending SIGCONT. A stopped process keeps everything but SIGKILL
/// pending.
fn post_to<P: Platform>(task: &mut Task<P>, info: SigInfo, thread: bool) {
    let sig = info.signo;
    let stopped = {
        let mut g = task.tg.lock();
        if sig == SIGCONT {
            g.pending.mask &= !STOP_SIGNALS;
            if g.job.stopped {
                g.job.stopped = false;
                g.job.event = Some(SIGCONT);
                g.job.notify = true;
            }
        } else if default_stop(sig) {
            g.pending.mask &= !bit(SIGCONT);
        }
        g.job.stopped
    };
    if sig == SIGCONT {
        task.signals.pending &= !STOP_SIGNALS;
    } else if default_stop(sig) {
        task.signals.pending &= !bit(SIGCONT);
    }
    let act = task.sighand.get()[(sig - 1) as usize];
    // A blocked signal is never ignored (its disposition may change before it is unblocked,
    // and a signalfd may take it): it stays pending, as on Linux. (A process-directed signal
    // counts as blocked here only if this thread blocks it; the scheduler hands it to a
    // thread that does not.)
    let blocked = task.signals.blocked & bit(sig) != 0 && sig != SIGKILL && sig != SIGSTOP;
    if act.handler == SIG_IGN && sig != SIGKILL && sig != SIGSTOP {
        if blocked {
            make_pending(task, info, thread);
        }
        return;
    }
    if act.handler == SIG_DFL || sig == SIGKILL || sig == SIGSTOP {
        if blocked || (stopped && sig != SIGKILL) {
            if !default_ignored(sig) || blocked {
                make_pending(task, info, thread);
            }
            return;
        }
        if default_ignored(sig) {
            return;
        }
        if default_stop(sig) {
            task.tg.lock().job.stop(sig);
            return;
        }
        exit_group(
            task,
            ExitStatus {
                code: 0,
                signal: sig,
            },
        );
        return;
    }
    make_pending(task, info, thread);
}

/// Marks `info.signo` pending with what it carries (for the thread, or its process); a task
/// waiting for it (a signalfd read, an epoll watching one) looks again.
fn make_pending<P: Platform>(task: &mut Task<P>, info: SigInfo, thread: bool) {
    let idx = (info.signo - 1) as usize;
    if thread {
        task.signals.pending |= bit(info.signo);
        task.signals.info[idx] = info;
        task.signals.posted = crate::events::stamp();
    } else {
        let mut g = task.tg.lock();
        g.pending.mask |= bit(info.signo);
        g.pending.info[idx] = info;
        g.pending.posted = crate::events::stamp();
    }
    crate::sched::note_progress();
}

/// Drops the pending signals that are ignored and no longer blocked (Linux discards them when
/// it would deliver them), and any pending `changed` whose disposition now ignores it,
/// blocked or not (`rt_sigaction` to SIG_IGN discards it, as POSIX says).
pub fn discard_ignored<P: Platform>(task: &mut Task<P>, changed: Option<i32>) {
    let ignored = ignored_set(task);
    let mut drop = ignored & !task.signals.blocked;
    if let Some(sig) = changed {
        drop |= ignored & bit(sig);
    }
    task.signals.pending &= !drop;
    if let Some(sig) = changed {
        task.tg.lock().pending.mask &= !(ignored & bit(sig));
    }
}

/// Signals whose disposition is to be ignored (SIG_IGN, or a default action that ignores).
fn ignored_set<P: Platform>(task: &Task<P>) -> u64 {
    let mut set = 0;
    for (i, a) in task.sighand.get().iter().enumerate() {
        let sig = i as i32 + 1;
        if a.handler == SIG_IGN || (a.handler == SIG_DFL && default_ignored(sig)) {
            set |= bit(sig);
        }
    }
    set & !UNBLOCKABLE
}

/// The lowest pending signal the task does not block.
pub fn deliverable<P: Platform>(task: &Task<P>) -> Option<i32> {
    let mut ready = pending_mask(task) & !task.signals.blocked;
    if ready != 0 {
        // An ignored signal that was pending while blocked is no reason to interrupt a wait
        // (Linux discards it when it is dequeued; here it stays until taken).
        ready &= !ignored_set(task);
    }
    (ready != 0).then(|| ready.trailing_zeros() as i32 + 1)
}

/// Runs the handler of pending signal `sig`: pushes a Linux `rt_sigframe` (return address =
/// `sa_restorer`, ucontext with the interrupted registers and mask, siginfo, and the whole
/// x87/SSE/AVX/... state as an XSAVE image that `uc_mcontext.fpregs` points to) on the app's
/// stack or its alternate stack, and points the registers at the handler, which starts with
/// the initial FPU state. Signals can arrive anywhere in the app's code (preemption), so its
/// FPU state must survive the handler.
pub fn deliver<P: Platform>(kernel: &mut Kernel, task: &mut Task<P>, sig: i32) {
    let idx = (sig - 1) as usize;
    let act = task.sighand.get()[idx];
    let info = take_pending(task, sig);
    if act.handler == SIG_DFL || act.handler == SIG_IGN {
        // A blocked default-action signal, now unblocked.
        if act.handler == SIG_DFL && default_stop(sig) {
            task.tg.lock().job.stop(sig);
            return;
        }
        if !default_ignored(sig) && act.handler == SIG_DFL {
            exit_group(
                task,
                ExitStatus {
                    code: 0,
                    signal: sig,
                },
            );
        }
        return;
    }
    if act.flags & SA_RESTORER == 0 {
        kernel.log(format_args!(
            "{} handler without SA_RESTORER: cannot return; killing",
            name(sig)
        ));
        exit_group(
            task,
            ExitStatus {
                code: 0,
                signal: SIGSEGV,
            },
        );
        return;
    }
    let old_mask = task
        .signals
        .saved_mask
        .take()
        .unwrap_or(task.signals.blocked);
    let r = task.regs;
    let (ss_sp, ss_size, ss_on) = task.signals.altstack;
    let on_alt_now = ss_on && r.rsp > ss_sp && r.rsp <= ss_sp + ss_size;
    let top = if act.flags & SA_ONSTACK != 0 && ss_on && !on_alt_now {
        ss_sp + ss_size
    } else {
        r.rsp.wrapping_sub(128)
    };
    // The FPU area (64-byte aligned, as Linux places it) above the frame: the whole XSAVE
    // image with its `_fpx_sw_bytes` and trailing magic where the platform has XSAVE.
    let fx = frame_xstate(task);
    let fp = top.wrapping_sub(fx.as_ref().map_or(0, |f| f.len()) as u64) & !63;
    let size = size_of::<RtSigframe>() as u64;
    let frame = (fp.wrapping_sub(size) & !15).wrapping_sub(8);
    let uc = frame + offset_of!(RtSigframe, uc) as u64;
    let si = frame + offset_of!(RtSigframe, info) as u64;
    let mut copy = r;
    let gregs: [u64; 18] = crate::platform::sigcontext_regs(&mut copy).map(|g| *g);
    let sf = RtSigframe {
        pretcode: act.restorer,
        uc: Ucontext {
            uc_stack: StackT {
                ss_sp,
                ss_flags: if ss_on { 0 } else { SS_DISABLE },
                ss_size,
                ..Default::default()
            },
            uc_mcontext: Sigcontext {
                gregs,
                cs: 0x33,
                ss: 0x2b,
                oldmask: old_mask,
                cr2: info.addr,
                fpstate: if fx.is_some() { fp } else { 0 },
                ..Default::default()
            },
            uc_sigmask: old_mask,
            uc_flags: match &fx {
                Some(f) if f.len() > FXSAVE_SIZE => UC_FP_XSTATE | UC_SIGCONTEXT_SS,
                _ => UC_SIGCONTEXT_SS,
            } | UC_STRICT_RESTORE_SS,
            ..Default::default()
        },
        info: SigInfo { signo: sig, ..info }.to_linux(),
    };
    let fx_ok = match &fx {
        Some(fx) => task.mm.lock().copy_out(fp, fx).is_ok(),
        None => true,
    };
    if !fx_ok || task.mm.lock().write_obj(frame, &sf).is_err() {
        // No room for the frame: Linux kills with SIGSEGV.
        exit_group(
            task,
            ExitStatus {
                code: 0,
                signal: SIGSEGV,
            },
        );
        return;
    }
    task.regs.rip = act.handler;
    task.regs.rsp = frame;
    task.regs.rdi = sig as u64;
    task.regs.rsi = si;
    task.regs.rdx = uc;
    task.regs.rax = 0;
    task.regs.eflags &= !0x500; // DF, TF
                                // The handler starts with the initial FPU state, as on Linux (the interrupted code's is in
                                // the frame).
    if fx.is_some() {
        let _ = task
            .ctx
            .set_fpu_state(&mut task.mm.lock().space, &xsave::initial_legacy());
    }
    let mut mask = old_mask | act.mask;
    if act.flags & SA_NODEFER == 0 {
        mask |= bit(sig);
    }
    task.signals.blocked = mask & !UNBLOCKABLE;
    if act.flags & SA_RESETHAND != 0 {
        task.sighand.lock()[idx] = SigAction::default();
    }
}

/// `rt_sigreturn`: restores the registers and mask saved by `deliver` (the frame's ucontext is
/// at the stack pointer once the handler returned into `sa_restorer`). Returns the restored rax.
pub fn sigreturn<P: Platform>(
    kernel: &mut Kernel,
    task: &mut Task<P>,
) -> Result<u64, crate::errno::Errno> {
    let uc: Ucontext = task.mm.lock().read_obj(task.regs.rsp)?;
    let r = &mut task.regs;
    let slots = crate::platform::sigcontext_regs(r);
    for (slot, g) in slots.into_iter().zip(uc.uc_mcontext.gregs) {
        *slot = g;
    }
    r.orig_rax = u64::MAX;
    task.signals.blocked = uc.uc_sigmask & !UNBLOCKABLE;
    // The FPU state the frame points to (the handler may have changed it, as on Linux).
    let fp = uc.uc_mcontext.fpstate;
    if fp != 0 {
        let mut img = read_frame_xstate(task, fp)?;
        // MXCSR bits this CPU does not support must be clear (restoring faults otherwise):
        // its mask is in any state it saved (0 there means the classic 0xffbf). It never
        // changes: read once.
        if kernel.mxcsr_mask == 0 {
            kernel.mxcsr_mask = task
                .ctx
                .fpu_state(&mut task.mm.lock().space)
                .map(|cur| xsave::rd_u32(&cur, 28))
                .unwrap_or(0);
        }
        let supported = match kernel.mxcsr_mask {
            0 => 0xffbf,
            m => m,
        };
        let (features, _) = task.ctx.xstate_layout();
        let allowed = if img.len() > FXSAVE_SIZE {
            xsave::rd_u64(&img, 472)
        } else {
            0
        };
        // A header the CPU would refuse: Linux's restore fails and the app gets SIGSEGV.
        xsave::sanitize(&mut img, features, allowed, supported).map_err(|_| EFAULT)?;
        task.ctx
            .set_fpu_state(&mut task.mm.lock().space, &img)
            .map_err(|_| EFAULT)?;
    }
    Ok(task.regs.rax)
}

/// `uc_flags` bits of a signal frame (Linux's x86-64 values).
const UC_FP_XSTATE: u64 = 1;
const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;

/// The interrupted code's FPU state as a signal frame carries it: the platform's XSAVE image
/// with `_fpx_sw_bytes` (magic1, extended size, features, size) in the legacy area's
/// software-reserved bytes and FP_XSTATE_MAGIC2 after it — what glibc and Linux's
/// `rt_sigreturn` look for — or the bare 512-byte FXSAVE area without XSAVE. None if the
/// platform cannot say.
fn frame_xstate<P: Platform>(task: &mut Task<P>) -> Option<Vec<u8>> {
    let mut img = task.ctx.fpu_state(&mut task.mm.lock().space).ok()?;
    let (features, size) = task.ctx.xstate_layout();
    img[xsave::LEGACY_HW..FXSAVE_SIZE].fill(0);
    if features != 0 && img.len() == size && size > FXSAVE_SIZE {
        let ext = size as u32 + 4;
        img[464..468].copy_from_slice(&xsave::FP_XSTATE_MAGIC1.to_le_bytes());
        img[468..472].copy_from_slice(&ext.to_le_bytes());
        img[472..480].copy_from_slice(&features.to_le_bytes());
        img[480..484].copy_from_slice(&(size as u32).to_le_bytes());
        img.extend_from_slice(&xsave::FP_XSTATE_MAGIC2.to_le_bytes());
    } else {
        img.truncate(FXSAVE_SIZE);
    }
    Some(img)
}

/// The FPU image a signal frame's `fpstate` holds at `rt_sigreturn`: the whole XSAVE image
/// where its `_fpx_sw_bytes` and trailing magic match this platform's layout, else (as
/// Linux treats a frame without them) only the legacy area.
fn read_frame_xstate<P: Platform>(task: &mut Task<P>, fp: u64) -> Result<Vec<u8>, Errno> {
    let mut img = alloc::vec![0u8; FXSAVE_SIZE];
    task.mm.lock().copy_in(fp, &mut img)?;
    let (features, size) = task.ctx.xstate_layout();
    let sw_ok = features != 0
        && size > FXSAVE_SIZE
        && xsave::rd_u32(&img, 464) == xsave::FP_XSTATE_MAGIC1
        && xsave::rd_u32(&img, 468) as usize == size + 4
        && xsave::rd_u32(&img, 480) as usize == size;
    if sw_ok {
        let mut full = alloc::vec![0u8; size + 4];
        if task.mm.lock().copy_in(fp, &mut full).is_ok()
            && xsave::rd_u32(&full, size) == xsave::FP_XSTATE_MAGIC2
        {
            full.truncate(size);
            return Ok(full);
        }
    }
    Ok(img)
}

/// A synchronous signal (fault, bad instruction): its handler runs now if the app has one and
/// neither blocks nor ignores it; otherwise Linux forces the default action (termination).
pub fn deliver_fault<P: Platform>(kernel: &mut Kernel, task: &mut Task<P>, info: SigInfo) {
    let sig = info.signo;
    let act = task.sighand.get()[(sig - 1) as usize];
    if act.handler != SIG_DFL && act.handler != SIG_IGN && task.signals.blocked & bit(sig) == 0 {
        task.signals.pending |= bit(sig);
        task.signals.info[(sig - 1) as usize] = info;
        deliver(kernel, task, sig);
        return;
    }
    exit_group(
        task,
        ExitStatus {
            code: 0,
            signal: sig,
        },
    );
}

/// A synchronous signal without details (kept for callers that have no fault address).
pub fn deliver_fatal_or_default<P: Platform>(kernel: &mut Kernel, task: &mut Task<P>, sig: i32) {
    deliver_fault(
        kernel,
        task,
        SigInfo {
            signo: sig,
            code: SI_KERNEL,
            ..Default::default()
        },
    );
}

/// Sends a signal the Sentry raises for the thread itself (SIGPIPE).
pub fn raise<P: Platform>(task: &mut Task<P>, sig: i32) {
    post_thread(
        task,
        SigInfo {
            signo: sig,
            code: SI_USER,
            pid: task.pid,
            ..Default::default()
        },
    );
}
