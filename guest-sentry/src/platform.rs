//! The Platform abstraction: how app code runs and how its syscalls and faults come back to
//! the Sentry. Modelled on gVisor's `platform.Platform` / `Context` / `AddressSpace`.
//!
//! Implementations: kvm (the Sentry is the guest kernel; `src/kvm/platform.rs`), and the
//! fallbacks ptrace and systrap (the `fallback` crate). The Sentry's task loop
//! ([`crate::kernel`]) is written once against these traits.

pub use ring0::UserRegs;

/// The registers in the order of Linux's `struct sigcontext` / `mcontext_t.gregs` (r8..r15,
/// rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags): signal frames and the systrap stub's
/// frames use it.
pub fn sigcontext_regs(r: &mut UserRegs) -> [&mut u64; 18] {
    [
        &mut r.r8,
        &mut r.r9,
        &mut r.r10,
        &mut r.r11,
        &mut r.r12,
        &mut r.r13,
        &mut r.r14,
        &mut r.r15,
        &mut r.rdi,
        &mut r.rsi,
        &mut r.rbp,
        &mut r.rbx,
        &mut r.rdx,
        &mut r.rax,
        &mut r.rcx,
        &mut r.rsp,
        &mut r.rip,
        &mut r.eflags,
    ]
}

use alloc::vec::Vec;

use crate::errno::Errno;

/// Access rights of a mapping, or the kind of access that faulted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Access {
    pub const NONE: Access = Access {
        read: false,
        write: false,
        execute: false,
    };
    pub const R: Access = Access {
        read: true,
        write: false,
        execute: false,
    };
    pub const RW: Access = Access {
        read: true,
        write: true,
        execute: false,
    };
    pub const RX: Access = Access {
        read: true,
        write: false,
        execute: true,
    };

    /// From `PROT_*` bits (the caller has rejected unknown bits).
    pub fn from_prot(prot: u64) -> Access {
        Access {
            read: prot & 1 != 0,
            write: prot & 2 != 0,
            execute: prot & 4 != 0,
        }
    }

    /// Whether every right in `want` is granted by `self`. On x86-64 any mapping is readable.
    pub fn allows(self, want: Access) -> bool {
        (!want.write || self.write) && (!want.execute || self.execute) && (!want.read || self.any())
    }

    pub fn any(self) -> bool {
        self.read || self.write || self.execute
    }

    pub fn union(self, o: Access) -> Access {
        Access {
            read: self.read || o.read,
            write: self.write || o.write,
            execute: self.execute || o.execute,
        }
    }
}

/// Why [`Context::switch`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The app made a syscall: number in `regs.orig_rax`, arguments in rdi, rsi, rdx, r10, r8,
    /// r9; the result goes in `regs.rax`.
    Syscall,
    /// The app made a syscall through a 32-bit entry (`int 0x80`, `sysenter`, or `syscall` from
    /// 32-bit code): the i386 number in `regs.orig_rax`. The Sentry does not serve that ABI and
    /// answers ENOSYS in `regs.rax`; the platform must resume the app in the mode it was in.
    Syscall32,
    /// A page fault at `addr` attempting `access`.
    Fault { addr: u64, access: Access },
    /// Another CPU exception (x86 vector number), turned into a signal by the Sentry.
    Exception { vector: u8, error_code: u64 },
    /// Something outside the app needs the Sentry (preemption, a host event).
    Interrupt,
}

/// An app address space: which app virtual pages show which pages of the memory file.
pub trait AddressSpace {
    /// Makes `[addr, addr + len)` show the memory file's `[offset, offset + len)` with `access`,
    /// replacing whatever was mapped there. Page-aligned.
    fn map_file(&mut self, addr: u64, offset: u64, len: u64, access: Access) -> Result<(), Errno>;
    /// Stops showing anything at `[addr, addr + len)`.
    fn unmap(&mut self, addr: u64, len: u64);
    /// The scheduler is switching to another task: this address space's task will not run
    /// for a while (a platform whose stub busy-waits for the Sentry can let it sleep).
    fn park(&mut self) {}
    /// Where a patched syscall site may jump instead of trapping ([`crate::patch`]): an entry
    /// the app can reach that takes the syscall number in rax and the return address in rcx,
    /// as the `syscall` instruction leaves them. `None` (the default) where trapping is cheap
    /// (kvm) or nothing else can be offered (ptrace).
    fn syscall_entry(&self) -> Option<u64> {
        None
    }
    /// Whether [`AddressSpace::syscall_entry`] may offer an entry: where it never does, the
    /// Sentry does not even look at the site of a syscall (kvm's hot path).
    const PATCHES_SITES: bool = false;
    /// On a [`Platform::PARALLEL`] platform, while a context started with
    /// [`Context::start`] runs here: whether its event has come (or its app can no longer
    /// run), so [`Context::finish`] returns without waiting.
    fn event_ready(&self) -> bool {
        true
    }
    /// Asks the app running here (started with [`Context::start`]) to come back to the
    /// Sentry soon with an [`Event::Interrupt`]: the Sentry has a signal, an exit or another
    /// thread of this address space for it. Returning without doing anything is correct
    /// (the preemption tick brings it back), only slower.
    fn kick(&self) {}
    /// Waits until one of `spaces` (each with a started context) has its event ready, or
    /// `timeout_ns` has passed (then None). The default serves a platform that never runs
    /// apps in parallel: nothing is ever left running.
    fn wait_any(spaces: &[&Self], _timeout_ns: u64) -> Option<usize>
    where
        Self: Sized,
    {
        spaces.iter().position(|s| s.event_ready())
    }
}

/// A thread of app execution.
pub trait Context {
    type AddressSpace: AddressSpace;
    /// Runs the app in `space` with `regs` until it makes a syscall, faults or is interrupted.
    fn switch(
        &mut self,
        space: &mut Self::AddressSpace,
        regs: &mut UserRegs,
    ) -> Result<Event, Errno>;
    /// Starts the app running with `regs` and returns without waiting for its event
    /// ([`Platform::PARALLEL`] platforms only): [`Context::finish`] collects it. Until then
    /// the Sentry neither reads nor changes `regs`, this context or `space`'s mappings.
    /// An error here is the one `switch` would have returned.
    fn start(&mut self, space: &mut Self::AddressSpace, regs: &UserRegs) -> Result<(), Errno> {
        let _ = (space, regs);
        Err(crate::errno::ENOSYS)
    }
    /// Waits for the event of the app [`Context::start`] started and returns it, as
    /// `switch` would have (`regs` as they were given to `start`, updated).
    fn finish(
        &mut self,
        space: &mut Self::AddressSpace,
        regs: &mut UserRegs,
    ) -> Result<Event, Errno> {
        self.switch(space, regs)
    }
    /// The app's x87/SSE/AVX/... registers as of its last event, as an XSAVE standard-format
    /// image ([`crate::xsave`]) of exactly [`Context::xstate_layout`]'s size, its legacy area
    /// normalized ([`crate::xsave::normalize`]): saved in a signal frame so a handler cannot
    /// clobber the interrupted code's state, and copied into a new thread.
    fn fpu_state(&mut self, space: &mut Self::AddressSpace) -> Result<Vec<u8>, Errno>;
    /// Replaces them with `img`: either a 512-byte legacy image (every other component then
    /// in its init state) or one of [`Context::xstate_layout`]'s size already made loadable
    /// ([`crate::xsave::sanitize`]); any other length is EINVAL.
    fn set_fpu_state(&mut self, space: &mut Self::AddressSpace, img: &[u8]) -> Result<(), Errno>;
    /// The XSAVE components (XCR0 bits) this platform's images hold and their size: `(0, 512)`
    /// where it has no XSAVE (legacy images only).
    fn xstate_layout(&self) -> (u64, usize);
}

/// Size of the FXSAVE layout of x87/SSE state.
pub const FXSAVE_SIZE: usize = crate::xsave::LEGACY_SIZE;

pub trait Platform {
    type AddressSpace: AddressSpace;
    type Context: Context<AddressSpace = Self::AddressSpace>;
    fn name(&self) -> &'static str;
    fn new_address_space(&mut self) -> Result<Self::AddressSpace, Errno>;
    fn new_context(&mut self) -> Result<Self::Context, Errno>;
    /// Whether the app runs until it calls the Sentry unless [`Platform::preempt_after`] asks
    /// for an interrupt. The fallbacks' stubs are preempted anyway (they tick every few ms of
    /// CPU time), so the scheduler need not work out deadlines for them.
    const PREEMPT_ON_REQUEST: bool = false;
    /// Whether apps of different address spaces can run at the same time, each started with
    /// [`Context::start`] and collected with [`Context::finish`] while the Sentry serves the
    /// others' events (the fallbacks: a stub process each). Where false, `switch` runs one
    /// app at a time.
    const PARALLEL: bool = false;
    /// The Sentry wants the app interrupted (an [`Event::Interrupt`]) within `ns` even if it
    /// makes no syscall: a timer is due or another task waits for the CPU.
    fn preempt_after(&mut self, _ns: u64) {}
}
