//! Signal state: dispositions (`rt_sigaction`), the blocked mask (`rt_sigprocmask`), and what
//! happens when the app raises a synchronous signal (fault, bad instruction).
//!
//! Handler delivery (signal frames, `rt_sigreturn`) arrives with processes and signals; until
//! then a synchronous signal with a handler installed ends the program as the default action
//! would, and says so on stderr.

use crate::host::ExitStatus;
use crate::kernel::{Kernel, Task};
use crate::platform::Platform;

pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGSEGV: i32 = 11;
pub const SIGPIPE: i32 = 13;
pub const SIGSTOP: i32 = 19;
pub const NSIG: usize = 64;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

/// `struct k_sigaction` as the x86-64 `rt_sigaction` syscall sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

#[derive(Clone, Debug)]
pub struct SignalState {
    pub actions: [SigAction; NSIG],
    pub blocked: u64,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [SigAction::default(); NSIG],
            blocked: 0,
        }
    }
}

/// Bit of signal `sig` in a mask.
pub fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
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

pub fn name(sig: i32) -> &'static str {
    const NAMES: [&str; 32] = [
        "SIG0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.get(sig as usize).copied().unwrap_or("SIGRT")
}

/// A synchronous signal (fault, bad instruction): Linux forces it even if ignored or blocked.
pub fn deliver_fatal_or_default<P: Platform>(kernel: &mut Kernel, task: &mut Task<P>, sig: i32) {
    let act = task.signals.actions[(sig - 1) as usize];
    if act.handler != SIG_DFL && act.handler != SIG_IGN {
        kernel.log(format_args!(
            "{} at {:#x}: signal handlers are not delivered yet; ending the program as the default action does",
            name(sig),
            task.regs.rip
        ));
    }
    task.exit = Some(ExitStatus {
        code: 0,
        signal: sig,
    });
}

/// An asynchronous signal raised by the Sentry for the task itself (e.g. SIGPIPE): ignored or
/// blocked signals are dropped for now (queueing arrives with signal delivery); the default
/// action of the signals raised so far is to terminate.
pub fn raise<P: Platform>(task: &mut Task<P>, sig: i32) {
    let act = task.signals.actions[(sig - 1) as usize];
    if act.handler == SIG_IGN || task.signals.blocked & bit(sig) != 0 {
        return;
    }
    task.exit = Some(ExitStatus {
        code: 0,
        signal: sig,
    });
}
