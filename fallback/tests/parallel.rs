//! Apps of two address spaces running at once (`Context::start` / `finish`,
//! `AddressSpace::wait_any`, `kick`), on both fallbacks: two apps hand a word back and forth in
//! shared memory without a syscall (neither gets to its syscall unless both run), a spinning
//! app comes back when kicked, and `wait_any` gives up at its timeout while apps only spin.

use std::arch::global_asm;

use guest_sentry::platform::{Access, AddressSpace, Context, Event, Platform, UserRegs};

global_asm!(
    r#"
    .section .text.parallel_test, "ax"
    .balign 16
    .global par_test_start
par_test_start:
    // A: wait for B's word, answer, then getpid. rbx = the shared data page.
1:  mov rax, [rbx]
    test rax, rax
    jz 1b
    mov qword ptr [rbx + 8], 1
    mov eax, 39
    syscall
    ud2
    .global par_test_b
par_test_b:
    // B: set the word, wait for A's answer, then getpid.
    mov qword ptr [rbx], 1
2:  mov rax, [rbx + 8]
    test rax, rax
    jz 2b
    mov eax, 39
    syscall
    ud2
    .global par_test_spin
par_test_spin:
3:  pause
    jmp 3b
    .global par_test_end
par_test_end:
    .text
"#
);

extern "C" {
    fn par_test_start();
    fn par_test_b();
    fn par_test_spin();
    fn par_test_end();
}

const CODE: u64 = 0x10_0000;
const DATA: u64 = 0x20_0000;
const PAGE: usize = 4096;

/// The sandbox's memory file: the code in page 0, the shared data in page 1.
fn memfd() -> i32 {
    let start = par_test_start as *const () as usize;
    let end = par_test_end as *const () as usize;
    // SAFETY: plain syscalls, results checked; the two symbols delimit the test code.
    unsafe {
        let fd = libc::memfd_create(c"parallel-test".as_ptr(), libc::MFD_CLOEXEC);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, 2 * PAGE as i64), 0);
        let n = libc::pwrite(fd, start as *const libc::c_void, end - start, 0);
        assert_eq!(n as usize, end - start);
        fd
    }
}

fn space<P: Platform>(plat: &mut P) -> P::AddressSpace {
    let mut space = plat.new_address_space().expect("address space");
    space.map_file(CODE, 0, PAGE as u64, Access::RX).unwrap();
    space
        .map_file(DATA, PAGE as u64, PAGE as u64, Access::RW)
        .unwrap();
    space
}

fn regs_at(f: unsafe extern "C" fn()) -> UserRegs {
    let off = f as *const () as usize - par_test_start as *const () as usize;
    UserRegs {
        rip: CODE + off as u64,
        rsp: DATA + PAGE as u64 - 64,
        rbx: DATA,
        eflags: 0x202,
        ..Default::default()
    }
}

/// Waits for one of `spaces` and returns its index (panics after a minute).
fn wait_one<S: AddressSpace>(spaces: &[&S]) -> usize {
    for _ in 0..60 {
        if let Some(i) = S::wait_any(spaces, 1_000_000_000) {
            return i;
        }
    }
    panic!("no app came back in a minute");
}

fn two_apps_at_once<P: Platform>(mut plat: P) {
    assert!(P::PARALLEL);
    let mut sa = space(&mut plat);
    let mut sb = space(&mut plat);
    let mut ca = plat.new_context().unwrap();
    let mut cb = plat.new_context().unwrap();
    let mut ra = regs_at(par_test_start);
    let mut rb = regs_at(par_test_b);
    ca.start(&mut sa, &ra).unwrap();
    cb.start(&mut sb, &rb).unwrap();
    let mut left = vec![0usize, 1];
    while !left.is_empty() {
        let i = {
            let spaces: Vec<&P::AddressSpace> = left
                .iter()
                .map(|&w| if w == 0 { &sa } else { &sb })
                .collect();
            left[wait_one(&spaces)]
        };
        let (ctx, space, regs) = if i == 0 {
            (&mut ca, &mut sa, &mut ra)
        } else {
            (&mut cb, &mut sb, &mut rb)
        };
        match ctx.finish(space, regs).unwrap() {
            Event::Syscall => {
                assert_eq!(regs.orig_rax, 39, "app {i} at {:#x}", regs.rip);
                left.retain(|&w| w != i);
            }
            // A preemption tick: it goes on.
            Event::Interrupt => ctx.start(space, regs).unwrap(),
            ev => panic!("app {i}: {ev:?} at {:#x}", regs.rip),
        }
    }
}

fn kick_and_timeout<P: Platform>(mut plat: P) {
    let mut s = space(&mut plat);
    let mut c = plat.new_context().unwrap();
    let mut r = regs_at(par_test_spin);
    c.start(&mut s, &r).unwrap();
    // Only spinning: nothing comes within a millisecond (its tick needs 10 ms of its CPU).
    assert_eq!(P::AddressSpace::wait_any(&[&s], 1_000_000), None);
    s.kick();
    wait_one(&[&s]);
    assert_eq!(c.finish(&mut s, &mut r).unwrap(), Event::Interrupt);
    let off = par_test_spin as *const () as usize - par_test_start as *const () as usize;
    let spin = CODE + off as u64;
    assert!(
        (spin..spin + 4).contains(&r.rip),
        "came back at {:#x}",
        r.rip
    );
}

#[test]
fn systrap_runs_apps_at_once() {
    two_apps_at_once(fallback::systrap::SystrapPlatform::new(memfd()));
    kick_and_timeout(fallback::systrap::SystrapPlatform::new(memfd()));
}

#[test]
fn ptrace_runs_apps_at_once() {
    two_apps_at_once(fallback::ptrace::PtracePlatform::new(memfd(), true));
    kick_and_timeout(fallback::ptrace::PtracePlatform::new(memfd(), true));
}
