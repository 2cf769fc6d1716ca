//! Several contexts taking turns on one address space (one stub): each keeps its own x87, SSE,
//! AVX and AVX-512 state across the others' runs, whether its syscalls trap or (systrap) come
//! through the fast entry; `fpu_state`/`set_fpu_state` reach a context's own state whether or
//! not it is the one live in the stub.

use std::arch::global_asm;

use guest_sentry::platform::{Access, AddressSpace, Context, Event, Platform, UserRegs};

global_asm!(
    r#"
    .section .text.fpu_test, "ax"
    .balign 16
    .global fpu_test_start
fpu_test_start:
    // rdi = seed, rdx = MXCSR, r8 = x87 control word, rbx = dump area, rsp = stack;
    // rsi flags: 1 syscalls through the fast entry, 2 do not load anything (dump what the
    // context started with), 4 AVX, 8 AVX-512.
    test esi, 2
    jnz 5f
    mov [rbx], rdi
    mov [rbx + 8], edx
    mov [rbx + 16], r8w
    fldcw [rbx + 16]
    fild qword ptr [rbx]
    ldmxcsr [rbx + 8]
    lea rax, [rdi + 3]
    movq xmm2, rax
    test esi, 4
    jz 5f
    lea rax, [rdi + 2]
    vmovq xmm1, rax
    vpbroadcastq ymm1, xmm1
    test esi, 8
    jz 5f
    vpbroadcastq zmm0, rdi
    lea rax, [rdi + 1]
    vpbroadcastq zmm17, rax
    kmovq k3, rdi
5:  call 20f
    // The state as this context finds it after the others ran.
    movdqu [rbx + 272], xmm2
    stmxcsr [rbx + 288]
    fnstcw [rbx + 292]
    fistp qword ptr [rbx + 296]
    movdqu [rbx + 64], xmm0
    test esi, 4
    jz 6f
    vmovdqu [rbx + 192], ymm1
    test esi, 8
    jz 6f
    vmovdqu64 [rbx + 64], zmm0
    vmovdqu64 [rbx + 128], zmm17
    vmovdqu64 [rbx + 192], zmm1
    kmovq [rbx + 256], k3
6:  call 20f
    ud2
20: test esi, 1
    jnz 21f
    mov eax, 39
    syscall
    ret
21: lea rcx, [rip + 22f]
    mov eax, 39
    jmp qword ptr [rip + fpu_test_entry]
22: ret
    .balign 8
fpu_test_entry:
    .quad 0
    .global fpu_test_end
fpu_test_end:
    .text
"#
);

extern "C" {
    fn fpu_test_start();
    fn fpu_test_end();
}

const CODE: u64 = 0x10_0000;
const DATA: u64 = 0x20_0000;
const PAGE: usize = 4096;

const FAST: u64 = 1;
const DUMP_ONLY: u64 = 2;

struct Memfd {
    fd: i32,
    map: *mut u8,
}

impl Memfd {
    fn new(len: usize) -> Memfd {
        // SAFETY: plain syscalls; results checked.
        unsafe {
            let fd = libc::memfd_create(c"fpu-test".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, len as i64), 0);
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            Memfd {
                fd,
                map: map as *mut u8,
            }
        }
    }

    fn u64_at(&self, off: usize) -> u64 {
        // SAFETY: inside the mapping (the tests read their dump areas only).
        unsafe { (self.map.add(off) as *const u64).read_volatile() }
    }
}

fn features() -> u64 {
    let mut f = 0;
    if std::arch::is_x86_feature_detected!("avx2") {
        f |= 4;
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            f |= 8;
        }
    }
    f
}

/// One app thread of the test: its seed, control words, flags, and where it dumps.
struct Thread<C> {
    ctx: C,
    regs: UserRegs,
    seed: u64,
    mxcsr: u64,
    fcw: u64,
    /// The high half of xmm2: 0 as its code leaves it, unless the "Sentry" changed it.
    xmm2_hi: u64,
    /// Offset of its data page in the memory file.
    page: usize,
}

impl<C: Context> Thread<C> {
    fn new(ctx: C, n: usize, flags: u64) -> Thread<C> {
        let seed = 0x0101_0101_0101_0101u64.wrapping_mul(0x10 * n as u64 + 1) & 0x7fff_ffff_ffff;
        let mxcsr = 0x1f80 | ((n as u64 % 4) << 13); // a rounding mode of its own
        let fcw = 0x7f | [3, 2, 0][n % 3] << 8; // a precision of its own
        let page = (1 + n) * PAGE;
        let base = DATA + (n * PAGE) as u64;
        let regs = UserRegs {
            rip: CODE,
            rsp: base + PAGE as u64 - 64,
            rbx: base,
            rdi: seed,
            rdx: mxcsr,
            r8: fcw,
            rsi: flags | features(),
            eflags: 0x202,
            ..Default::default()
        };
        Thread {
            ctx,
            regs,
            seed,
            mxcsr,
            fcw,
            xmm2_hi: 0,
            page,
        }
    }

    /// Runs it to its next syscall (which the "Sentry" answers with 0).
    fn step(&mut self, space: &mut C::AddressSpace) {
        let ev = self.ctx.switch(space, &mut self.regs).expect("switch");
        assert_eq!(ev, Event::Syscall, "at {:#x}", self.regs.rip);
        assert_eq!(self.regs.orig_rax, 39);
        self.regs.rax = 0;
    }

    /// Checks `fpu_state` gives its own values.
    fn check_live(&mut self, space: &mut C::AddressSpace, what: &str) {
        let fx = self.ctx.fpu_state(space).unwrap();
        self.check_fx(&fx, what);
    }

    /// Checks the image `fx` holds its own values (in its legacy area).
    fn check_fx(&self, fx: &[u8], what: &str) {
        let q = |o: usize| u64::from_le_bytes(fx[o..o + 8].try_into().unwrap());
        assert_eq!(q(160 + 32), self.seed + 3, "{what}: xmm2");
        assert_eq!(q(24) & 0xffff_ffff, self.mxcsr, "{what}: mxcsr");
        assert_eq!(q(0) & 0xffff, self.fcw, "{what}: fcw");
    }

    /// Checks what its code dumped: its own values everywhere (or, for a context created with
    /// `from`'s image, `from`'s: a new thread gets its parent's whole state).
    fn check_dump(&self, mem: &Memfd, from: Option<&Thread<C>>) {
        let d = |o: usize| mem.u64_at(self.page + o);
        let src = from.unwrap_or(self);
        let s = src.seed;
        let f = features();
        assert_eq!(d(272), s + 3, "xmm2");
        assert_eq!(d(280), src.xmm2_hi, "xmm2 high");
        assert_eq!(d(288) & 0xffff_ffff, src.mxcsr, "mxcsr");
        assert_eq!((d(288) >> 32) & 0xffff, src.fcw, "fcw");
        assert_eq!(d(296), s, "st0");
        if f & 4 != 0 {
            assert_eq!([d(192), d(200)], [s + 2, s + 2], "xmm1");
            assert_eq!([d(208), d(216)], [s + 2, s + 2], "ymm1 high");
        }
        if f & 8 != 0 {
            for i in 0..8 {
                assert_eq!(d(64 + 8 * i), s, "zmm0[{i}]");
                assert_eq!(d(128 + 8 * i), s + 1, "zmm17[{i}]");
                if i >= 4 {
                    assert_eq!(d(192 + 8 * i), 0, "zmm1[{i}]");
                }
            }
            assert_eq!(d(256), s, "k3");
        }
    }
}

/// A fresh address space with the test code at CODE and four data pages at DATA.
fn setup<P: Platform>(plat: &mut P, mem: &Memfd) -> P::AddressSpace {
    let start = fpu_test_start as *const () as usize;
    let end = fpu_test_end as *const () as usize;
    let mut space = plat.new_address_space().expect("address space");
    // SAFETY: the two symbols delimit the test code; the memory file's first page is ours.
    unsafe {
        std::ptr::copy_nonoverlapping(start as *const u8, mem.map, end - start);
        let entry = space.syscall_entry().unwrap_or(0);
        (mem.map.add(end - start - 8) as *mut u64).write_unaligned(entry);
    }
    space.map_file(CODE, 0, PAGE as u64, Access::RX).unwrap();
    space
        .map_file(DATA, PAGE as u64, 4 * PAGE as u64, Access::RW)
        .unwrap();
    space
}

/// Threads A and B alternate (modes `a`, `b`: 0 trapped syscalls, FAST the fast entry); C
/// is created while A runs, from A's whole state, and runs last (mode `c`).
fn alternate<P: Platform>(mut plat: P, mem: &Memfd, a: u64, b: u64, c: u64) {
    let mut space = setup(&mut plat, mem);
    let mut ta = Thread::new(plat.new_context().unwrap(), 0, a);
    let mut tb = Thread::new(plat.new_context().unwrap(), 1, b);
    let mut tc = Thread::new(plat.new_context().unwrap(), 2, c | DUMP_ONLY);
    ta.step(&mut space);
    let mut fx = ta.ctx.fpu_state(&mut space).unwrap();
    ta.check_fx(&fx, "A live");
    // The Sentry changes A's live legacy state (as a signal return does): the change must
    // survive B's run too.
    ta.xmm2_hi = 0x5a5a_0000_0000_5a5a;
    fx[200..208].copy_from_slice(&ta.xmm2_hi.to_le_bytes());
    ta.ctx.set_fpu_state(&mut space, &fx).unwrap();
    // A new thread gets its parent's whole state, without touching the parent's.
    tc.ctx.set_fpu_state(&mut space, &fx).unwrap();
    ta.check_live(&mut space, "A after C's set");
    tb.step(&mut space);
    tb.check_live(&mut space, "B live");
    ta.check_live(&mut space, "A saved");
    ta.step(&mut space);
    ta.check_dump(mem, None);
    tb.step(&mut space);
    tb.check_dump(mem, None);
    tc.step(&mut space);
    tc.step(&mut space);
    tc.check_dump(mem, Some(&ta));
    // A dropped owner leaves no owner behind: the next context runs with its own state.
    drop(tc);
    let mut td = Thread::new(plat.new_context().unwrap(), 3, DUMP_ONLY);
    td.step(&mut space);
    td.step(&mut space);
    let d = |o: usize| mem.u64_at(td.page + o);
    assert_eq!(d(272), 0, "D's xmm2 starts initial");
    assert_eq!(d(288) & 0xffff_ffff, 0x1f80, "D's mxcsr starts initial");
    assert_eq!((d(288) >> 32) & 0xffff, 0x37f, "D's fcw starts initial");
}

#[test]
fn systrap_contexts_keep_their_state() {
    let modes = [(0, 0, 0), (0, FAST, FAST), (FAST, 0, 0), (FAST, FAST, FAST)];
    for (a, b, c) in modes {
        let mem = Memfd::new(8 * PAGE);
        let (trapped, fast) = fallback::systrap::syscall_counts();
        alternate(
            fallback::systrap::SystrapPlatform::new(mem.fd),
            &mem,
            a,
            b,
            c,
        );
        let (trapped2, fast2) = fallback::systrap::syscall_counts();
        // A, B, C and D (trapped) make two syscalls each, through the entry asked for.
        let fasts = 2 * [a, b, c].iter().filter(|&&m| m == FAST).count() as u64;
        assert_eq!(fast2 - fast, fasts, "fast syscalls");
        assert_eq!(trapped2 - trapped + fast2 - fast, 8, "syscalls");
    }
}

#[test]
fn ptrace_contexts_keep_their_state() {
    let mem = Memfd::new(8 * PAGE);
    alternate(
        fallback::ptrace::PtracePlatform::new(mem.fd, false),
        &mem,
        0,
        0,
        0,
    );
}
