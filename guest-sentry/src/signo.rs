//! Linux signal numbers and their names (numbers from `linux-raw-sys`).

use linux_raw_sys::general as g;

macro_rules! signals {
    ($($name:ident),* $(,)?) => {
        $(pub const $name: i32 = g::$name as i32;)*
        /// The name of signal `sig` (`"SIGINT"`), `None` for a real-time or invalid number.
        pub fn name(sig: i32) -> Option<&'static str> {
            #[allow(non_upper_case_globals)]
            mod n {
                use super::g;
                $(pub const $name: i32 = g::$name as i32;)*
            }
            match sig {
                $(n::$name => Some(stringify!($name)),)*
                _ => None,
            }
        }
    };
}

// One name per number (aliases such as SIGIOT = SIGABRT and SIGPOLL = SIGIO are left out).
signals! {
    SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGKILL, SIGUSR1,
    SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP,
    SIGTTIN, SIGTTOU, SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR,
    SIGSYS,
}

/// The first real-time signal (the kernel's; libc keeps a few for itself).
pub const SIGRTMIN: i32 = g::SIGRTMIN as i32;
/// The last signal number (`_NSIG - 1`).
pub const SIGRTMAX: i32 = 64;

/// Writes the name of `sig` the way strace does: `SIGINT`, `SIGRTMIN+3`, or the number.
pub fn write_name(out: &mut impl core::fmt::Write, sig: i32) -> core::fmt::Result {
    match name(sig) {
        Some(n) => out.write_str(n),
        None if sig == SIGRTMIN => out.write_str("SIGRTMIN"),
        None if (SIGRTMIN..=SIGRTMAX).contains(&sig) => write!(out, "SIGRTMIN+{}", sig - SIGRTMIN),
        None => write!(out, "{sig}"),
    }
}
