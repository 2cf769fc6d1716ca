//! Random syscalls with hostile arguments, made to the Sentry's syscall table on the fake host
//! and platform (`guest_sentry::testing`): no syscall, whatever its arguments and whatever
//! the app's memory holds, may panic the Sentry (a panic is the guest kernel's end on kvm and
//! vmm's on the fallbacks). The app's memory starts with bytes from the input, so structures
//! behind pointers (iovecs, msghdrs, sigactions, signal frames, clone3 args, paths) are
//! fuzzed too.
//!
//! Input: two bytes (how much of the rest fills the scratch mapping), that many bytes, then
//! calls of 56 bytes each: a syscall number (two bytes) and six arguments (a kind byte and
//! eight value bytes each).
#![no_main]

use guest_sentry::kernel::Config;
use guest_sentry::testing::{FakeHost, Harness, SCRATCH};
use libfuzzer_sys::fuzz_target;

/// At most this many calls per input (a longer input's tail is ignored).
const MAX_CALLS: usize = 48;

/// The bytes of the input, read front to back; zeros once used up.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
}

/// An argument of kind `kind` made from `v`: the values that break argument checks.
fn arg(kind: u8, v: u64, scratch: u64) -> u64 {
    match kind % 10 {
        0 | 1 => v,
        2 => v % 64,
        // Into the app's memory (what the input filled), and straddling its end.
        3 | 4 => scratch + v % SCRATCH,
        5 => scratch + SCRATCH - v % 64,
        6 => 0,
        7 => u64::MAX - v % 4,
        // The kernel half and the non-canonical hole.
        8 => {
            [
                0xffff_8000_0000_0000,
                0x0000_8000_0000_0000,
                0xffff_ffff_ff60_0000,
            ][(v % 3) as usize]
                + (v >> 8) % 0x10000
        }
        // Unmapped, low.
        _ => 0x1000 + v % 0x10_0000,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let host = FakeHost::with_files(&[
        ("/etc/hosts", b"127.0.0.1 localhost\n"),
        ("/bin/sh", b"#!/bin/sh\n"),
        ("/lib/x86_64-linux-gnu/libc.so.6", b"\x7fELF\x02\x01\x01"),
    ]);
    let strace = data.first().is_some_and(|b| b & 0x80 != 0);
    let mut h = Harness::new(
        host,
        Config {
            strace,
            ..Default::default()
        },
    );
    let fill = (input.u16() as usize % 4096).min(input.0.len());
    let (head, rest) = input.0.split_at(fill);
    h.put(head);
    input.0 = rest;
    let scratch = h.scratch();
    for _ in 0..MAX_CALLS {
        if input.0.is_empty() {
            break;
        }
        let nr = input.u16();
        // Mostly the table's numbers; some past its end and into the x32 range.
        let nr = match nr >> 12 {
            0 => u32::from(nr),
            1 => 0x4000_0000 | u32::from(nr & 0x1ff),
            _ => u32::from(nr % 464),
        };
        let mut a = [0u64; 6];
        for x in &mut a {
            let kind = input.u8();
            *x = arg(kind, input.u64(), scratch);
        }
        h.call(nr, &a);
        // What the scheduler would do next (fork, exec, wait, block) is not the syscall
        // layer's: forget it, as if the scheduler refused.
        h.task.request = None;
        let _ = h.take_log();
    }
});
