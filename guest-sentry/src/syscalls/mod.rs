//! The syscall layer: [`dispatch`] serves the syscall a task made through the [`table`] (one
//! entry per syscall: number, name, `--strace` argument kinds, restart rule, handler), logs
//! unknown syscalls once and answers them ENOSYS, and prints the `--strace` line
//! ([`strace`]). [`layer`] hands it to the kernel's task loop, which never imports it.
//!
//! Handlers live by family: [`mem`] (address space), [`io`] (file descriptors, stdio),
//! [`fs`] (paths, host files, descriptors), [`ovl`] (writes through the overlay), [`proc`]
//! (identity, exit, limits, signals), [`time`] (clocks, sleeps, randomness), [`futex`].

mod events;
mod flags;
mod fs;
mod futex;
mod inet;
mod io;
pub mod ipc;
mod locks;
mod mem;
mod netlink;
mod ovl;
mod proc;
mod socket;
mod strace;
pub mod table;
#[cfg(test)]
mod tests;
mod time;
mod tty;
mod walk;
mod xattr;

// The made-up filesystems, by the names the handlers use.
use crate::fsimpl::{devfs, procfs};

use alloc::string::String;

use crate::errno::{SysResult, ENOSYS};
use crate::kernel::LogVerdict;
use crate::kernel::{Kernel, Task};
use crate::platform::Platform;

/// Serves the syscall the task just made and stores the result in `rax`.
pub fn dispatch<P: Platform>(k: &mut Kernel, t: &mut Task<P>) {
    let n = t.regs.orig_rax;
    if k.config.strace {
        // As the app passed them (a handler may change the registers).
        k.strace_args = args(&t.regs);
    }
    if !table::serve(k, t, n) {
        // (The registers are as the app left them: nothing served the call.)
        let r = unknown(k, n, &args(&t.regs));
        finish(k, t, n, r);
    }
}

/// What follows every syscall's handler (inlined into each table entry, where the result's
/// shape is known): the result into `rax`, the view of other processes dropped once used,
/// the `--strace` line.
#[inline(always)]
fn finish<P: Platform>(k: &mut Kernel, t: &mut Task<P>, n: u64, result: SysResult) {
    match result {
        Ok(v) => t.regs.rax = v,
        Err(procfs::NEED_VIEW) => {
            // Runs again once the scheduler has rendered the other processes (rax untouched).
            t.request = Some(crate::sched::Request::ProcView);
            return;
        }
        Err(_) => t.regs.rax = crate::errno::to_rax(result),
    }
    if t.request.is_none() {
        // A call that did not wait is done: a blocking stream write's count ends with it,
        // whichever way it ended (e.g. EBADF when its descriptor was closed meanwhile).
        t.partial_write = 0;
    }
    if k.proc_view.is_some() {
        done_with_view(k, t.pid);
    }
    if k.config.strace {
        // (The result as `rax` holds it: handing `result` itself made every entry keep it in
        // memory for this cold call.)
        traced(k, t, n);
    }
}

/// The `--strace` line of a syscall just served (when its number is among those traced).
#[cold]
#[inline(never)]
fn traced<P: Platform>(k: &mut Kernel, t: &mut Task<P>, n: u64) {
    if !k.config.strace_only.contains(n) {
        return;
    }
    let result = if t.request.is_some() {
        None
    } else {
        Some(crate::errno::from_rax(t.regs.rax))
    };
    let a = k.strace_args;
    strace_line(k, t, n, &a, result);
}

/// The six argument registers of a syscall, in order.
#[inline(always)]
fn args(r: &crate::platform::UserRegs) -> [u64; 6] {
    [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]
}

/// The view of the other processes rendered for `pid`'s syscall has served it.
#[cold]
#[inline(never)]
fn done_with_view(k: &mut Kernel, pid: u32) {
    if k.proc_view.as_ref().is_some_and(|v| v.for_pid == pid) {
        k.proc_view = None;
    }
}

/// A syscall the table does not know: ENOSYS, logged the first time (off the common path).
#[cold]
#[inline(never)]
fn unknown(k: &mut Kernel, n: u64, a: &[u64; 6]) -> SysResult {
    match k.unknown_logged.first_time(n) {
        LogVerdict::Log => k.log(format_args!(
            "unsupported syscall {n} (args {:#x}, {:#x}, {:#x}): ENOSYS",
            a[0], a[1], a[2]
        )),
        LogVerdict::Saturated => k.log(format_args!(
            "unsupported syscall {n}: ENOSYS (further unsupported numbers are not logged)"
        )),
        LogVerdict::Quiet => {}
    }
    Err(ENOSYS)
}

/// The syscall layer for [`crate::kernel::run`]: this table's dispatch and restart rules.
pub fn layer<P: Platform>() -> crate::kernel::Syscalls<P> {
    crate::kernel::Syscalls {
        dispatch: dispatch::<P>,
        restartable: |n| table::spec(n).is_none_or(|s| s.restart),
    }
}

fn strace_line<P: Platform>(
    k: &Kernel,
    t: &mut Task<P>,
    n: u64,
    a: &[u64; 6],
    result: Option<SysResult>,
) {
    let spec = table::spec(n);
    let mut s = String::new();
    strace::line(
        &mut s,
        t,
        spec.map(|s| s.name),
        spec.map_or(&[], |s| s.args),
        spec.map_or(strace::Ret::Dec, |s| s.ret),
        (n, a),
        result,
    );
    k.host.log(&s);
}
