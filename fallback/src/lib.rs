//! The fallback platforms, for hosts without usable virtualization: the Sentry runs inside the
//! `vmm` process and the app in a stub process per address space ([`stub`]).
//!
//! - [`ptrace`]: syscalls and faults arrive as `PTRACE_SYSEMU` / signal stops.
//! - [`systrap`]: seccomp `SECCOMP_RET_TRAP` → SIGSYS in the stub → shared-memory handoff.

pub mod ptrace;
pub mod stub;
pub mod systrap;
mod xstate;
