//! Hostile hypercalls to the kvm VMM's hypercall server (`vmm::kvm::hypercall`), as a guest
//! that broke out of its Sentry could make them: every request must be served, refused with an
//! errno or declared malformed (the sandbox's end) — never a panic — and nothing outside the
//! sandbox root may change, with writes allowed or not. The root is the property test's
//! fixture (`vmm::kvm::hypercall::testing`), remade for every input.
//!
//! Input: the guest memory's first bytes (requests, paths, iovecs and buffers are all in
//! it). Its first byte: bit 0 allows writes (`--rw`), bits 1–4 the number of requests; then
//! a `u16` per request: its block's address in 8-byte units.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use guest_sentry::abi::op;
use libfuzzer_sys::fuzz_target;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm::host::HostServices;
use vmm::kvm::hypercall::testing::{fixture, snapshot, Tree};
use vmm::kvm::hypercall::{Outcome, Server};

const MEM: u64 = 1 << 20;

/// The fuzzer's own directory: `root` (remade for every input) and `outside`, which no input
/// may change.
fn base() -> &'static (PathBuf, Tree) {
    static BASE: OnceLock<(PathBuf, Tree)> = OnceLock::new();
    BASE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("vmm-fuzz-hc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let outside = base.join("outside");
        std::fs::create_dir_all(outside.join("sub")).unwrap();
        std::fs::write(outside.join("victim"), b"untouched").unwrap();
        // The Sentry's log lines (LOG requests) go nowhere.
        vmm::host::set_sentry_log(std::fs::File::create("/dev/null").unwrap());
        let before = snapshot(&outside);
        (base, before)
    })
}

fn word(mem: &GuestMemoryMmap, gpa: u64) -> u64 {
    mem.read_obj(GuestAddress(gpa)).unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let Some(&head) = data.first() else {
        return;
    };
    let (base, before) = base();
    let root = fixture(base);
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap();
    let n = data.len().min(MEM as usize);
    mem.write_slice(&data[..n], GuestAddress(0)).unwrap();
    let exe = std::fs::File::open("/proc/self/exe").unwrap();
    let mut host = HostServices::new(&root, exe).unwrap();
    if head & 1 != 0 {
        host.allow_writes();
    }
    let mut server = Server::new(&mem, MEM, host);
    let requests = usize::from(head >> 1 & 15) + 1;
    for k in 0..requests {
        let at = 1 + 2 * k;
        let Some(units) = data.get(at..at + 2) else {
            break;
        };
        let gpa = u64::from(u16::from_le_bytes([units[0], units[1]])) * 8 % MEM;
        // Never the fuzzer's own stdio (a read would wait for it, an ioctl reach its
        // terminal, writes fill its output), nor long sleeps: the same requests with other
        // handles, shorter sleeps.
        let opcode = word(&mem, gpa);
        let arg0 = gpa + 8;
        if matches!(opcode, op::READ | op::WRITE | op::IOCTL) && word(&mem, arg0) <= 2 {
            let _ = mem.write_obj(word(&mem, arg0) + 3, GuestAddress(arg0));
        }
        if opcode == op::SLEEP {
            let _ = mem.write_obj(word(&mem, arg0) % 1000, GuestAddress(arg0));
        }
        match server.handle(gpa) {
            Outcome::Continue => {
                let ret: i64 = mem.read_obj(GuestAddress(gpa + 56)).unwrap();
                assert!(ret >= -4095, "request at {gpa:#x}: ret {ret}");
            }
            // The sandbox's end (as the VMM ends it).
            Outcome::Exit { .. } | Outcome::Panic(_) | Outcome::Invalid(_) => break,
        }
    }
    drop(server);
    assert_eq!(
        &snapshot(&base.join("outside")),
        before,
        "outside the root changed"
    );
    let mut names: Vec<_> = std::fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["outside", "root"], "something new beside the root");
});
