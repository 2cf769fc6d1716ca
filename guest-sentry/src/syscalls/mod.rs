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
mod io;
pub mod ipc;
mod mem;
mod ovl;
mod proc;
mod socket;
mod strace;
pub mod table;
#[cfg(test)]
mod tests;
mod time;
mod walk;

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
    let a = [
        t.regs.rdi, t.regs.rsi, t.regs.rdx, t.regs.r10, t.regs.r8, t.regs.r9,
    ];
    let result = match table::serve(k, t, n, a) {
        Some(r) => r,
        None => {
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
    };
    if result == Err(procfs::NEED_VIEW) {
        // Runs again once the scheduler has rendered the other processes (rax untouched).
        t.request = Some(crate::sched::Request::ProcView);
        return;
    }
    if k.proc_view.as_ref().is_some_and(|v| v.for_pid == t.pid) {
        k.proc_view = None;
    }
    t.regs.rax = crate::errno::to_rax(result);
    if k.config.strace && k.config.strace_only.contains(n) {
        let result = if t.request.is_some() {
            None
        } else {
            Some(result)
        };
        strace_line(k, t, n, &a, result);
    }
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
