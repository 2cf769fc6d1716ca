//! The fallback platforms, for hosts without usable virtualization: the Sentry runs inside the
//! `vmm` process and the app in a stub process per address space ([`stub`]).
//!
//! - [`ptrace`]: syscalls and faults arrive as `PTRACE_SYSEMU` / signal stops.
//! - systrap (seccomp `SECCOMP_RET_TRAP` and a shared-memory handoff) is next.

pub mod ptrace;
pub mod stub;
