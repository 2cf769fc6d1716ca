//! The guest CPU layer of the kvm platform: everything the Sentry needs to be an x86-64
//! kernel in guest ring 0, and nothing else.
//!
//! - [`init`] loads a GDT in the Linux selector layout, a TSS (`rsp0`, an IST stack for double
//!   faults), an IDT covering every exception and the `int $0x80` gate, the `syscall` MSRs
//!   (`STAR`, `LSTAR`, `CSTAR`, `SFMASK`) and a null `SYSENTER_CS` (so `sysenter` faults),
//!   and turns on the CPU features the app expects (SSE, XSAVE) and the ones that protect the
//!   Sentry from the app (SMEP, SMAP, NX, write-protect).
//! - [`switch_to_user`] enters ring 3 with a full register set and returns when the app makes a
//!   syscall or takes an exception — like a function call, so the Sentry's task loop is an
//!   ordinary loop (gVisor's `ring0` works the same way). The entry code is in `entry.rs`.
//! - [`FpuState`] saves and restores the app's x87/SSE/AVX state. The Sentry itself is built
//!   soft-float and never touches those registers, so the state only has to be saved when
//!   another context runs on the CPU.
//!
//! Standard x86-64 only: no hypervisor-specific extensions.
#![no_std]

#[cfg(target_os = "none")]
mod cpu;
#[cfg(target_os = "none")]
mod entry;

#[cfg(target_os = "none")]
pub use cpu::*;
#[cfg(target_os = "none")]
pub use entry::{syscall32_entry_address, syscall_entry_address, KernelTrapFrame};

/// Linux's x86-64 selector layout (arch/x86/include/asm/segment.h).
pub mod selectors {
    pub const KERNEL32_CS: u16 = 0x08;
    pub const KERNEL_CS: u16 = 0x10;
    pub const KERNEL_DS: u16 = 0x18;
    pub const USER32_CS: u16 = 0x23;
    pub const USER_DS: u16 = 0x2b;
    pub const USER_CS: u16 = 0x33;
    pub const TSS: u16 = 0x40;
}

/// App registers, in the layout of Linux's `struct user_regs_struct` (what ptrace uses), so
/// every platform can share it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

/// Why [`switch_to_user`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// The app executed `syscall`; `orig_rax` holds the number.
    Syscall,
    /// The app made a syscall through a 32-bit entry: `int $0x80` (from 32-bit or 64-bit
    /// code) or `syscall` from 32-bit code; `orig_rax` holds the i386 number (eax). `cs` says
    /// which mode the app was in; [`Return::Iret`] resumes it there.
    Syscall32,
    /// The app took exception `vector`; `cr2` is meaningful for page faults (vector 14).
    Exception {
        vector: u8,
        error_code: u64,
        cr2: u64,
    },
}

/// The i386 syscall gate: `int $0x80`, open to ring 3.
pub const VECTOR_INT80: u8 = 0x80;
/// Page-fault vector.
pub const VECTOR_PAGE_FAULT: u8 = 14;
/// The one external interrupt the VMM injects (only ever taken in ring 3: ring 0 runs with
/// interrupts off): "the Sentry is wanted" — a host signal arrived while the app ran.
pub const VECTOR_KICK: u8 = 32;

/// How [`switch_to_user`] should enter ring 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Return {
    /// `sysretq`: fast, but `rcx`/`r11` are lost (they must equal `rip`/`eflags`), as after a
    /// syscall.
    Sysret,
    /// `iretq`: every register restored exactly (after faults, signals, at exec).
    Iret,
}
