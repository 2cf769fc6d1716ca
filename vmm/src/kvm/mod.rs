//! The kvm platform, VMM side: one VM per sandbox, one memslot over the sandbox's memory file,
//! the Sentry image loaded as the guest kernel, boot page tables, long mode set directly
//! through `KVM_SET_SREGS`, one vCPU, and the hypercall server ([`hypercall`]).

pub mod hypercall;
pub mod probe;

use std::fs::File;
use std::io::Cursor;
use std::os::fd::{AsRawFd, FromRawFd};

/// Set by SIGALRM when the kick the guest asked for (`op::PREEMPT`) is due.
static KICK_DUE: AtomicBool = AtomicBool::new(false);

/// The vCPU's `kvm_run.immediate_exit` byte, once the vCPU exists (null before).
static IMMEDIATE_EXIT: std::sync::atomic::AtomicPtr<u8> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// Makes the next (or the current) KVM_RUN return at once (EINTR). A signal that arrives
/// between the loop's check of what is due and its KVM_RUN would otherwise be seen only at the
/// guest's next exit — never, while the app spins in ring 3 (the kick lost, the sandbox hung).
/// Async-signal-safe: one volatile store.
pub fn exit_vcpu_now() {
    let p = IMMEDIATE_EXIT.load(Ordering::SeqCst);
    if !p.is_null() {
        // SAFETY: `p` points into the vCPU's kvm_run mapping, which lives as long as the vCPU;
        // it is cleared (set to null) before the vCPU goes. KVM reads the byte at KVM_RUN.
        unsafe { p.write_volatile(1) };
    }
}

extern "C" fn on_kick_timer(_: i32) {
    KICK_DUE.store(true, Ordering::SeqCst);
    exit_vcpu_now();
}

/// Arms a one-shot timer: in `ns`, SIGALRM interrupts KVM_RUN (this process runs the vCPU on
/// its only thread) and the guest gets a kick interrupt.
pub fn arm_kick(ns: u64) {
    let ns = ns.clamp(1_000, 10_000_000_000);
    let it = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_usec: ((ns % 1_000_000_000) / 1000).max(1) as libc::suseconds_t,
        },
    };
    // SAFETY: a valid itimerval; no old value wanted.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
}

/// Installs the SIGALRM handler behind [`arm_kick`] (no SA_RESTART: KVM_RUN must return).
fn install_kick_timer() -> Result<(), KvmError> {
    // SAFETY: a zeroed sigaction with a handler that only stores an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_kick_timer as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut()) != 0 {
            return Err(KvmError::Io {
                what: "sigaction",
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// `_IOW(KVMIO, 0x86, struct kvm_interrupt)`: queue an external interrupt (no in-kernel irqchip).
const KVM_INTERRUPT: libc::c_ulong = 0x4004_ae86;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use guest_sentry::abi::{
    BootInfo, ARGS_GPA, ARGS_MAX, BOOT_FLAG_READ_ONLY, BOOT_FLAG_SINGLE_STEP, BOOT_FLAG_STRACE,
    BOOT_FLAG_WRITE_THROUGH, BOOT_INFO_GPA, BOOT_MAGIC, BOOT_VERSION, DIRECT_MAP_BASE,
    HYPERCALL_PORT, KERNEL_PHYS, KERNEL_VIRT_BASE,
};
use kvm_bindings::{kvm_segment, kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuExit};
use linux_loader::loader::{elf::Elf as ElfLoader, KernelLoader};
use pagetables::{FrameAllocator, PageSize, PageTables, PhysMem};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::host::{now_ns, HostServices};
use crate::runner::{End, ExecFailure, KvmStats, Program};

/// Why the kvm VMM could not set up or run a VM.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    #[error("guest memory must be a multiple of 2 MiB between 64 MiB and 4 GiB, not {0}")]
    MemorySize(u64),
    /// A KVM ioctl (named by `what`) failed.
    #[error("{what}: {source}")]
    Ioctl {
        what: &'static str,
        source: kvm_ioctls::Error,
    },
    /// A host call (named by `what`) failed.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("mapping the memory file: {0}")]
    MapMemory(vm_memory::mmap::FromRangesError),
    /// An access to guest memory (named by `what`) failed.
    #[error("{what}: {source}")]
    GuestMemory {
        what: &'static str,
        source: vm_memory::GuestMemoryError,
    },
    #[error("loading the guest image: {0}")]
    LoadImage(linux_loader::loader::Error),
    #[error("parsing the guest image: {0}")]
    ParseImage(goblin::error::Error),
    /// Building the boot page tables (the part named by `what`) failed.
    #[error("{what}: {error}")]
    PageTables {
        what: &'static str,
        error: pagetables::Error,
    },
    #[error("guest image has a writable and executable segment")]
    WritableExecutableSegment,
    #[error("argument list too long")]
    ArgumentsTooLong,
    #[error("getrandom failed")]
    Random,
    #[error("opening the sandbox root: {0}")]
    Root(std::io::Error),
    #[error("confining vmm: {0}")]
    Confine(#[from] crate::confine::ConfineError),
}

fn ioctl(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> KvmError {
    move |source| KvmError::Ioctl { what, source }
}

fn guest_memory(what: &'static str) -> impl FnOnce(vm_memory::GuestMemoryError) -> KvmError {
    move |source| KvmError::GuestMemory { what, source }
}

fn page_tables(what: &'static str) -> impl FnOnce(pagetables::Error) -> KvmError {
    move |error| KvmError::PageTables { what, error }
}

/// The Sentry built as the guest kernel (see `linker/`).
pub static GUEST_IMAGE: &[u8] = include_bytes!(env!("VMM_GUEST_IMAGE"));

/// Where KVM may put its TSS on Intel (must be outside guest memory, below 4 GiB).
const KVM_TSS_ADDRESS: u64 = 0xfffb_d000;
const LARGE_PAGE: u64 = 2 << 20;

/// What to run and how.
pub struct Config {
    pub mem_size: u64,
    pub strace: bool,
    /// The syscalls traced when `strace` is on.
    pub strace_only: guest_sentry::kernel::SyscallSet,
    /// Single-step the guest and count instructions (slow; for measurements).
    pub single_step: bool,
    /// `--ro`: no overlay.
    pub read_only: bool,
    /// `--rw`: file writes go through to the host tree.
    pub write_through: bool,
    /// `--pids-limit` (0: none).
    pub pids_limit: u32,
    /// `uname`'s nodename.
    pub hostname: guest_sentry::kernel::Hostname,
}

/// A host-side view of guest memory for building page tables.
struct HostPhys {
    base: *mut u8,
    size: u64,
}

// SAFETY: any pa below `size` (4 KiB aligned) is inside the guest memory mapping at `base`;
// anything else panics.
unsafe impl PhysMem for HostPhys {
    fn table_ptr(&self, pa: u64) -> *mut [u64; 512] {
        assert!(
            pa.is_multiple_of(4096) && pa + 4096 <= self.size,
            "table frame {pa:#x} outside guest memory"
        );
        // SAFETY: in bounds, checked above.
        unsafe { self.base.add(pa as usize).cast() }
    }
}

/// Bump allocator over never-used (hence zero) guest frames, for the boot page tables.
struct BootFrames {
    next: u64,
    end: u64,
}

impl FrameAllocator for BootFrames {
    fn alloc_frame(&mut self) -> Option<u64> {
        (self.next + 4096 <= self.end).then(|| {
            self.next += 4096;
            self.next - 4096
        })
    }
    fn free_frame(&mut self, _pa: u64) {}
}

/// Creates the memory file (a memfd) of `size` bytes and maps it as guest memory.
fn memory_file(size: u64) -> Result<GuestMemoryMmap, KvmError> {
    // SAFETY: a static C string; the fd is checked.
    let fd = unsafe { libc::memfd_create(c"vmm-memory".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(KvmError::Io {
            what: "memfd_create",
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: a fresh fd we own.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(size).map_err(|source| KvmError::Io {
        what: "sizing the memory file",
        source,
    })?;
    GuestMemoryMmap::from_ranges_with_files([(
        GuestAddress(0),
        size as usize,
        Some(FileOffset::new(file, 0)),
    )])
    .map_err(KvmError::MapMemory)
}

/// Lays the guest out: Sentry image, boot page tables, boot info, arguments. Returns the entry
/// point and the boot info.
fn lay_out(
    mem: &GuestMemoryMmap,
    cfg: &Config,
    prog: &Program,
) -> Result<(u64, BootInfo), KvmError> {
    let size = cfg.mem_size;
    let loaded = ElfLoader::load(
        mem,
        None,
        &mut Cursor::new(GUEST_IMAGE),
        Some(GuestAddress(KERNEL_PHYS)),
    )
    .map_err(KvmError::LoadImage)?;
    let elf = goblin::elf::Elf::parse(GUEST_IMAGE).map_err(KvmError::ParseImage)?;
    let image_end = loaded.kernel_end.div_ceil(4096) * 4096;

    let base = mem
        .get_host_address(GuestAddress(0))
        .map_err(guest_memory("guest memory"))?;
    let phys = HostPhys { base, size };
    let mut frames = BootFrames {
        next: image_end,
        end: size,
    };
    let mut pt = PageTables::new(&mut frames).map_err(page_tables("boot page tables"))?;
    let global_rw = pagetables::Flags {
        writable: true,
        user: false,
        executable: false,
        global: true,
    };
    // Direct map of all guest memory, 2 MiB pages — except the Sentry image itself, which is
    // reachable only through its own mapping (so its text is never writable through an alias).
    let image = KERNEL_PHYS..image_end;
    for chunk in (0..size).step_by(LARGE_PAGE as usize) {
        if chunk < image.end && chunk + LARGE_PAGE > image.start {
            for pa in (chunk..chunk + LARGE_PAGE)
                .step_by(4096)
                .filter(|pa| !image.contains(pa))
            {
                pt.map(
                    &phys,
                    &mut frames,
                    DIRECT_MAP_BASE + pa,
                    pa,
                    PageSize::Size4K,
                    global_rw,
                )
                .map_err(page_tables("direct map"))?;
            }
        } else {
            pt.map(
                &phys,
                &mut frames,
                DIRECT_MAP_BASE + chunk,
                chunk,
                PageSize::Size2M,
                global_rw,
            )
            .map_err(page_tables("direct map"))?;
        }
    }
    // The image, each segment with its own rights (never writable and executable).
    for ph in elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD)
    {
        let writable = ph.p_flags & goblin::elf::program_header::PF_W != 0;
        let executable = ph.p_flags & goblin::elf::program_header::PF_X != 0;
        if writable && executable {
            return Err(KvmError::WritableExecutableSegment);
        }
        let flags = pagetables::Flags {
            writable,
            user: false,
            executable,
            global: true,
        };
        let start = ph.p_vaddr & !4095;
        let end = (ph.p_vaddr + ph.p_memsz).div_ceil(4096) * 4096;
        for va in (start..end).step_by(4096) {
            let pa = va - KERNEL_VIRT_BASE;
            pt.map(&phys, &mut frames, va, pa, PageSize::Size4K, flags)
                .map_err(page_tables("image mapping"))?;
        }
    }
    let free_start = frames.next;

    // Arguments: execfn, exe, cwd, argv, envp, each NUL-terminated.
    let mut args = Vec::new();
    for s in [&prog.execfn, &prog.exe_path, &prog.cwd]
        .into_iter()
        .chain(&prog.argv)
        .chain(&prog.envp)
    {
        args.extend_from_slice(s);
        args.push(0);
    }
    if args.len() as u64 > ARGS_MAX {
        return Err(KvmError::ArgumentsTooLong);
    }
    mem.write_slice(&args, GuestAddress(ARGS_GPA))
        .map_err(guest_memory("writing arguments"))?;

    let mut seed = [0u8; 32];
    // SAFETY: seed is a writable 32-byte buffer.
    if unsafe { libc::getrandom(seed.as_mut_ptr().cast(), 32, 0) } != 32 {
        return Err(KvmError::Random);
    }
    let mut stdio_tty = 0;
    for fd in 0..3 {
        // SAFETY: isatty on our own stdio.
        if unsafe { libc::isatty(fd) } == 1 {
            stdio_tty |= 1 << fd;
        }
    }
    let bi = BootInfo {
        magic: BOOT_MAGIC,
        version: BOOT_VERSION,
        mem_size: size,
        free_start,
        kernel_root: pt.root(),
        tsc_khz: 0,
        realtime_ns: 0,
        monotonic_ns: 0,
        random_seed: seed,
        flags: if cfg.strace { BOOT_FLAG_STRACE } else { 0 }
            | if cfg.single_step {
                BOOT_FLAG_SINGLE_STEP
            } else {
                0
            }
            | if cfg.write_through {
                BOOT_FLAG_WRITE_THROUGH
            } else {
                0
            }
            | if cfg.read_only {
                BOOT_FLAG_READ_ONLY
            } else {
                0
            },
        args_len: args.len() as u64,
        argc: prog.argv.len() as u64,
        envc: prog.envp.len() as u64,
        stdio_tty,
        pids_limit: cfg.pids_limit.into(),
        strace_only: cfg.strace_only.0,
        hostname_len: cfg.hostname.as_bytes().len() as u64,
        hostname: {
            let mut h = [0u8; 64];
            h[..cfg.hostname.as_bytes().len()].copy_from_slice(cfg.hostname.as_bytes());
            h
        },
    };
    Ok((elf.entry, bi))
}

fn write_boot_info(mem: &GuestMemoryMmap, bi: &BootInfo) -> Result<(), KvmError> {
    // SAFETY: BootInfo is repr(C) plain old data.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            bi as *const BootInfo as *const u8,
            std::mem::size_of::<BootInfo>(),
        )
    };
    mem.write_slice(bytes, GuestAddress(BOOT_INFO_GPA))
        .map_err(guest_memory("writing boot info"))
}

fn segment(selector: u16, code: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: 1,
        dpl: 0,
        db: if code { 0 } else { 1 },
        s: 1,
        l: if code { 1 } else { 0 },
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// The vCPU state, for reports of a crashed guest.
fn cpu_state(vcpu: &mut kvm_ioctls::VcpuFd) -> String {
    let suberror = {
        let run = vcpu.get_kvm_run();
        if run.exit_reason == kvm_bindings::KVM_EXIT_INTERNAL_ERROR {
            // SAFETY: the exit reason says the `internal` member of the union is the live one.
            let internal = unsafe { run.__bindgen_anon_1.internal };
            format!("internal error {} ", internal.suberror)
        } else {
            String::new()
        }
    };
    match (vcpu.get_regs(), vcpu.get_sregs()) {
        (Ok(r), Ok(s)) => format!(
            "{suberror}rip {:#x} rsp {:#x} rflags {:#x} cs {:#x} cr0 {:#x} cr2 {:#x} cr3 {:#x} cr4 {:#x} efer {:#x}",
            r.rip, r.rsp, r.rflags, s.cs.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer
        ),
        _ => format!("{suberror}(registers unavailable)"),
    }
}

/// Runs `prog` in a fresh VM until the sandbox ends.
pub fn run(
    cfg: &Config,
    prog: Program,
    root: &std::path::Path,
) -> Result<(End, KvmStats), KvmError> {
    if !cfg.mem_size.is_multiple_of(LARGE_PAGE)
        || cfg.mem_size < (64 << 20)
        || cfg.mem_size > KVM_TSS_ADDRESS
    {
        return Err(KvmError::MemorySize(cfg.mem_size));
    }
    let kvm = Kvm::new().map_err(ioctl("opening /dev/kvm"))?;
    let vm = kvm.create_vm().map_err(ioctl("creating a VM"))?;
    vm.set_tss_address(KVM_TSS_ADDRESS as usize)
        .map_err(ioctl("KVM_SET_TSS_ADDR"))?;
    let mem = memory_file(cfg.mem_size)?;
    let host_addr = mem
        .get_host_address(GuestAddress(0))
        .map_err(guest_memory("guest memory"))?;
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: cfg.mem_size,
        userspace_addr: host_addr as u64,
    };
    // SAFETY: the region is a live mapping of cfg.mem_size bytes that outlives the VM (`mem`
    // is dropped after `vm` at the end of this function).
    unsafe { vm.set_user_memory_region(region) }.map_err(ioctl("KVM_SET_USER_MEMORY_REGION"))?;

    let (entry, mut bi) = lay_out(&mem, cfg, &prog)?;
    let mut vcpu = vm.create_vcpu(0).map_err(ioctl("creating the vCPU"))?;
    let cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(ioctl("KVM_GET_SUPPORTED_CPUID"))?;
    vcpu.set_cpuid2(&cpuid).map_err(ioctl("KVM_SET_CPUID2"))?;

    let mut sregs = vcpu.get_sregs().map_err(ioctl("KVM_GET_SREGS"))?;
    sregs.cs = segment(0x10, true);
    for s in [
        &mut sregs.ds,
        &mut sregs.es,
        &mut sregs.fs,
        &mut sregs.gs,
        &mut sregs.ss,
    ] {
        *s = segment(0x18, false);
    }
    sregs.tr = kvm_segment {
        base: 0,
        limit: 0x67,
        selector: 0x40,
        type_: 0xb,
        present: 1,
        ..Default::default()
    };
    sregs.cr0 = 0x8005_0033; // PG | WP | NE | ET | MP | PE
    sregs.cr3 = bi.kernel_root;
    sregs.cr4 = 0x620; // OSXMMEXCPT | OSFXSR | PAE
    sregs.efer = 0xd01; // NXE | LMA | LME | SCE
    vcpu.set_sregs(&sregs).map_err(ioctl("KVM_SET_SREGS"))?;
    let regs = kvm_bindings::kvm_regs {
        rip: entry,
        rdi: DIRECT_MAP_BASE + BOOT_INFO_GPA,
        rflags: 2,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(ioctl("KVM_SET_REGS"))?;

    bi.tsc_khz = vcpu.get_tsc_khz().map(u64::from).unwrap_or(0);
    bi.realtime_ns = now_ns(libc::CLOCK_REALTIME);
    bi.monotonic_ns = now_ns(libc::CLOCK_MONOTONIC);
    write_boot_info(&mem, &bi)?;

    if cfg.single_step {
        let dbg = kvm_bindings::kvm_guest_debug {
            control: kvm_bindings::KVM_GUESTDBG_ENABLE | kvm_bindings::KVM_GUESTDBG_SINGLESTEP,
            ..Default::default()
        };
        vcpu.set_guest_debug(&dbg)
            .map_err(ioctl("KVM_SET_GUEST_DEBUG"))?;
    }
    // `VMM_STEP_PROFILE=FILE` with single-stepping: where each Sentry step landed (guest RIP ->
    // steps), for `tests/measure-kvm --profile`. Opened now: vmm confines itself next.
    let mut profile = StepProfile::open(cfg.single_step)?;
    let root = crate::confine::enter_mount_namespace(root, cfg.write_through);
    let mut services = HostServices::new(&root, prog.file).map_err(KvmError::Root)?;
    if cfg.write_through {
        services.allow_writes();
    }
    let mut server = hypercall::Server::new(&mem, cfg.mem_size, services);
    let mut stats = KvmStats::default();
    install_kick_timer()?;
    crate::confine::lock_down(crate::confine::Platform::Kvm, cfg.write_through)
        .map_err(KvmError::Confine)?;
    IMMEDIATE_EXIT.store(
        std::ptr::addr_of_mut!(vcpu.get_kvm_run().immediate_exit),
        Ordering::SeqCst,
    );
    // Cleared on every way out of the loop below, before the vCPU can go.
    struct ForgetVcpu;
    impl Drop for ForgetVcpu {
        fn drop(&mut self) {
            IMMEDIATE_EXIT.store(std::ptr::null_mut(), Ordering::SeqCst);
        }
    }
    let _forget = ForgetVcpu;
    let end = loop {
        // A kick the guest asked for fell due outside KVM_RUN: deliver it on the way in.
        if KICK_DUE.swap(false, Ordering::SeqCst) {
            vcpu.get_kvm_run().request_interrupt_window = 1;
        }
        // Host signals for the sandbox go where the Sentry looks for them at its next step.
        let signals = crate::host::take_host_signals();
        if signals != 0 {
            let word = mem
                .get_host_address(GuestAddress(guest_sentry::abi::HOST_SIGNALS_GPA))
                .map_err(guest_memory("host signal word"))?;
            // SAFETY: an aligned u64 inside guest memory (which lives as long as `mem`); the
            // guest accesses it only atomically.
            unsafe { AtomicU64::from_ptr(word as *mut u64) }.fetch_or(signals, Ordering::SeqCst);
        }
        let exit = vcpu.run();
        stats.exits += 1;
        match exit {
            Ok(VcpuExit::IoOut(port, data)) => {
                stats.io_exits += 1;
                if port != HYPERCALL_PORT || data.len() != 4 {
                    break End::Killed(format!(
                        "guest wrote {} bytes to I/O port {port:#x}",
                        data.len()
                    ));
                }
                let gpa = u32::from_le_bytes(data.try_into().unwrap()) as u64;
                match server.handle(gpa) {
                    hypercall::Outcome::Continue => {}
                    hypercall::Outcome::Exit {
                        code,
                        signal,
                        exec_errno,
                    } => {
                        break if exec_errno != 0 {
                            End::ExecFailed(ExecFailure::errno(exec_errno))
                        } else if signal != 0 {
                            End::Signaled(signal)
                        } else {
                            End::Exited(code)
                        }
                    }
                    hypercall::Outcome::Panic(msg) => break End::Panic(msg),
                    hypercall::Outcome::Invalid(why) => {
                        break End::Killed(format!("invalid hypercall: {why}"))
                    }
                }
            }
            Ok(VcpuExit::Debug(arch)) if cfg.single_step => {
                if let Some(p) = profile.as_mut() {
                    p.step(arch.pc);
                }
                if arch.pc >= 0xffff_8000_0000_0000 {
                    stats.steps_kernel += 1;
                } else {
                    stats.steps_user += 1;
                }
            }
            Ok(VcpuExit::Shutdown) => {
                break End::Killed(format!(
                    "the guest kernel crashed (triple fault); {}",
                    cpu_state(&mut vcpu)
                ))
            }
            Ok(VcpuExit::Hlt) => {
                break End::Killed(format!("the guest kernel halted; {}", cpu_state(&mut vcpu)))
            }
            Ok(VcpuExit::IrqWindowOpen) => {
                stats.other_exits += 1;
                vcpu.get_kvm_run().request_interrupt_window = 0;
                let irq = kvm_bindings::kvm_interrupt {
                    irq: guest_sentry::abi::KICK_VECTOR,
                };
                // SAFETY: KVM_INTERRUPT on our vCPU fd with a valid kvm_interrupt.
                if unsafe { libc::ioctl(vcpu.as_raw_fd(), KVM_INTERRUPT, &irq) } < 0 {
                    return Err(KvmError::Io {
                        what: "KVM_INTERRUPT",
                        source: std::io::Error::last_os_error(),
                    });
                }
            }
            Ok(other) => {
                stats.other_exits += 1;
                let what = format!("{other:?}");
                break End::Killed(format!(
                    "unexpected VM exit {what}; {}",
                    cpu_state(&mut vcpu)
                ));
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                stats.interrupted += 1;
                vcpu.get_kvm_run().immediate_exit = 0;
                if crate::host::host_signals_pending() || KICK_DUE.swap(false, Ordering::SeqCst) {
                    // The app may be spinning in ring 3 without ever calling the Sentry: ask
                    // KVM to stop as soon as the guest can take an interrupt, then kick it.
                    vcpu.get_kvm_run().request_interrupt_window = 1;
                }
            }
            Err(e) => return Err(ioctl("KVM_RUN")(e)),
        }
    };
    stats.hypercalls = server.count;
    stats.guest_cpu = server.guest_cpu;
    if let Some(p) = profile {
        p.write()?;
    }
    Ok((end, stats))
}

/// The Sentry's single steps by guest RIP (`VMM_STEP_PROFILE`).
struct StepProfile {
    file: File,
    steps: std::collections::HashMap<u64, u64>,
    /// Where the previous step stopped: the instruction the next step executes.
    at: u64,
}

impl StepProfile {
    fn open(single_step: bool) -> Result<Option<StepProfile>, KvmError> {
        let Some(path) =
            std::env::var_os("VMM_STEP_PROFILE").filter(|p| single_step && !p.is_empty())
        else {
            return Ok(None);
        };
        let file = File::create(&path).map_err(|source| KvmError::Io {
            what: "creating the VMM_STEP_PROFILE file",
            source,
        })?;
        Ok(Some(StepProfile {
            file,
            steps: Default::default(),
            at: 0,
        }))
    }

    /// A step stopped at `pc`: it executed the instruction the previous one stopped at.
    fn step(&mut self, pc: u64) {
        if self.at >= 0xffff_8000_0000_0000 {
            *self.steps.entry(self.at).or_insert(0) += 1;
        }
        self.at = pc;
    }

    /// One line per RIP, `<hex rip> <steps>`, in address order.
    fn write(self) -> Result<(), KvmError> {
        use std::io::Write;
        let mut steps: Vec<_> = self.steps.into_iter().collect();
        steps.sort_unstable();
        let mut text = String::new();
        for (rip, n) in steps {
            text.push_str(&format!("{rip:x} {n}\n"));
        }
        (&self.file)
            .write_all(text.as_bytes())
            .map_err(|source| KvmError::Io {
                what: "writing the VMM_STEP_PROFILE file",
                source,
            })
    }
}
