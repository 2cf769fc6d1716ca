//! The kvm guest kernel: the Sentry booted by `vmm` as the kernel of a VM with no Linux inside.
//! The app runs in guest ring 3; syscalls and exceptions arrive through `ring0`; the host is
//! reached with hypercalls ([`hypercall`]); app address spaces are page tables that share the
//! kernel's upper half ([`platform`]).
#![no_std]
#![no_main]

extern crate alloc;

mod hypercall;
mod platform;

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::arch::global_asm;
use core::fmt::Write;

use guest_sentry::abi::{self, BootInfo, ARGS_GPA, DIRECT_MAP_BASE};
use guest_sentry::host::ExitStatus;
use guest_sentry::kernel::{self, Config, Kernel, Spawn};
use guest_sentry::memfile::MemoryFile;
use guest_sentry::syscalls;

#[global_allocator]
static ALLOCATOR: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();

// Entry point: the VMM starts the vCPU here in 64-bit mode with the boot page tables loaded and
// `rdi` = the direct-map address of `BootInfo`. Interrupts are off and stay off in ring 0.
global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    lea rsp, [rip + {stack} + {size}]
    xor ebp, ebp
    call {main}
    ud2
"#,
    stack = sym BOOT_STACK,
    size = const BOOT_STACK_SIZE,
    main = sym kmain,
);

const BOOT_STACK_SIZE: usize = 256 * 1024;
#[repr(C, align(16))]
struct Stack([u8; BOOT_STACK_SIZE]);
static mut BOOT_STACK: Stack = Stack([0; BOOT_STACK_SIZE]);

extern "C" fn kmain(bi: *const BootInfo) -> ! {
    // SAFETY: the VMM put BootInfo at this direct-map address and never changes it afterwards.
    let bi: &'static BootInfo = unsafe { &*bi };
    if bi.magic != abi::BOOT_MAGIC || bi.version != abi::BOOT_VERSION {
        panic!(
            "bad boot info (magic {:#x}, version {})",
            bi.magic, bi.version
        );
    }
    // SAFETY: first thing at boot, single CPU, interrupts off, image mapped per the link script.
    unsafe { ring0::init() };
    if bi.flags & abi::BOOT_FLAG_SINGLE_STEP != 0 {
        // SAFETY: the VMM asked for it, so it intercepts the debug exceptions.
        unsafe { ring0::set_trace_mode(true) };
    }

    let heap_size = (bi.mem_size / 8).clamp(8 << 20, 256 << 20) & !0xfff;
    let heap_start = bi.free_start;
    if heap_start + heap_size + (16 << 20) > bi.mem_size {
        panic!("guest memory too small: {} bytes", bi.mem_size);
    }
    // SAFETY: [heap_start, heap_start + heap_size) is free memory (BootInfo::free_start) mapped
    // in the direct map, and nothing else uses it: the frame allocator starts above it.
    unsafe {
        ALLOCATOR.lock().init(
            (DIRECT_MAP_BASE + heap_start) as *mut u8,
            heap_size as usize,
        )
    };
    // SAFETY: the direct map covers the whole memory file; frames above the heap are free.
    let mem =
        Rc::new(unsafe { MemoryFile::new(DIRECT_MAP_BASE, bi.mem_size, heap_start + heap_size) });

    let host = hypercall::KvmHost::new(bi);
    let spawn = read_args(bi);
    let mut platform = platform::KvmPlatform::new(mem.clone(), bi.kernel_root);
    let config = Config {
        strace: bi.flags & abi::BOOT_FLAG_STRACE != 0,
        strace_only: kernel::SyscallSet(bi.strace_only),
        read_only: bi.flags & abi::BOOT_FLAG_READ_ONLY != 0,
        write_through: bi.flags & abi::BOOT_FLAG_WRITE_THROUGH != 0,
        pids_limit: u32::try_from(bi.pids_limit).unwrap_or(u32::MAX),
        overlay_limit: 0,
        // One vCPU.
        cpus: 1,
        hostname: bi
            .hostname
            .get(..bi.hostname_len as usize)
            .and_then(kernel::Hostname::new)
            .unwrap_or_default(),
    };
    let mut k = Kernel::new(&host, mem, config, bi.random_seed);
    k.host_signal_word = Some(hypercall::host_signal_word());
    match kernel::run(&mut platform, &mut k, spawn, syscalls::layer()) {
        Ok(status) => host.exit(status, 0),
        Err(kernel::RunError::Exec(e)) => host.exit(
            ExitStatus {
                code: 126,
                signal: 0,
            },
            e.0,
        ),
        Err(kernel::RunError::Platform(e)) => panic!("platform failure: errno {}", e.0),
    }
}

/// The first process's execfn, exe path, cwd, argv and envp, laid out by the VMM at `ARGS_GPA`.
fn read_args(bi: &BootInfo) -> Spawn {
    let len = bi.args_len.min(abi::ARGS_MAX) as usize;
    // SAFETY: the VMM wrote `args_len` bytes at ARGS_GPA (inside guest memory, below the image).
    let raw =
        unsafe { core::slice::from_raw_parts((DIRECT_MAP_BASE + ARGS_GPA) as *const u8, len) };
    let mut parts = raw.split(|&b| b == 0).map(|s| s.to_vec());
    let execfn = parts.next().unwrap_or_default();
    let exe_path = parts.next().unwrap_or_default();
    let cwd = parts
        .next()
        .filter(|c| c.first() == Some(&b'/'))
        .unwrap_or_else(|| b"/".to_vec());
    let argv: Vec<Vec<u8>> = parts.by_ref().take(bi.argc as usize).collect();
    let envp: Vec<Vec<u8>> = parts.take(bi.envc as usize).collect();
    Spawn {
        execfn,
        exe_path,
        cwd,
        argv,
        envp,
    }
}

/// A fixed-size text buffer for panic messages (no allocation: the heap may be the problem).
struct FixedBuf {
    buf: [u8; 1024],
    len: usize,
}
impl Write for FixedBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn fatal(args: core::fmt::Arguments) -> ! {
    let mut b = FixedBuf {
        buf: [0; 1024],
        len: 0,
    };
    let _ = b.write_fmt(args);
    hypercall::panic(&b.buf[..b.len])
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(l) => fatal(format_args!(
            "{} [{}:{}]",
            info.message(),
            l.file(),
            l.line()
        )),
        None => fatal(format_args!("{}", info.message())),
    }
}

/// An exception in ring 0 (see `ring0`'s entry code): a Sentry bug. Report and stop.
#[no_mangle]
extern "C" fn ring0_kernel_trap(f: &ring0::KernelTrapFrame, cr2: u64) -> ! {
    fatal(format_args!(
        "exception {} (error {:#x}) in the Sentry at rip {:#x}, cr2 {:#x}, rsp {:#x}, rax {:#x}, rdi {:#x}, rsi {:#x}",
        f.vector, f.error_code, f.rip, cr2, f.rsp, f.rax, f.rdi, f.rsi
    ))
}
