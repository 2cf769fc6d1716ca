//! The Sentry: vmm's Linux-compatible kernel, written once and run by every platform.
//!
//! - [`platform`]: the Platform traits (address space, context, events).
//! - [`kernel`]: kernel state, tasks and what one event of a task does; [`sched`]: the task
//!   loop, processes and the scheduler.
//! - [`syscalls`]: the syscall table.
//! - [`mm`]: the memory manager (VMAs, demand faults, checked copies to and from the app).
//! - [`loader`]: ELF loading and the initial stack; [`image_cache`]: images kept between execs.
//! - [`patch`]: rewriting trapped syscall sites into jumps, where the platform's trap is slow.
//! - [`host`]: what the Sentry may ask of the host; [`abi`]: the kvm boot/hypercall ABI;
//!   [`linux`]: the Linux ABI structures read from and written to app memory.
//!
//! `no_std + alloc`: the same code is the kvm guest kernel (`src/kvm/main.rs`, feature
//! `kernel`) and a library linked into `vmm` for the fallbacks.
#![cfg_attr(not(test), no_std)]

extern crate alloc;
#[cfg(any(test, feature = "testing"))]
extern crate std;

pub mod abi;
pub mod errno;
pub mod events;
pub mod file;
pub mod fsimpl;
pub mod futex;
pub mod host;
pub mod image_cache;
pub mod ipc;
pub mod kernel;
pub mod linux;
pub mod loader;
pub mod locks;
pub mod memfile;
pub mod mm;
pub mod net;
pub mod overlay;
pub mod patch;
pub mod platform;
pub mod posix_timers;
pub mod sched;
pub mod shared;
pub mod signal;
pub mod signo;
pub mod syscalls;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tty;
pub mod xsave;
