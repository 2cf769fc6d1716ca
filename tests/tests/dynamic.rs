//! Dynamically linked programs — the host's own coreutils, as a user types them: the Sentry
//! loads the ELF interpreter (the dynamic loader) the program names, and the loader maps the
//! shared libraries with `mmap`. Each is compared with the same run natively (stdout and exit
//! status: the sandbox may log unsupported syscalls on stderr), on every platform under test.

use std::path::Path;
use vmm_tests::{check_same, platforms_under_test, run_command, run_vmm_raw};

#[test]
fn dynamic_programs_match_native() {
    let cases: &[(&str, &[&str])] = &[
        ("/bin/echo", &["hello", "dynamic world"]),
        ("/bin/cat", &["/etc/os-release"]),
        ("/bin/ls", &["-la", "/usr"]),
        (
            "/usr/bin/env",
            &["-i", "A=1", "/bin/echo", "exec'd by a dynamic program"],
        ),
        (
            "/bin/sh",
            &[
                "-c",
                "for f in /etc/hostname /etc/os-release; do wc -c $f; done",
            ],
        ),
        ("/bin/false", &[]),
    ];
    let mut failures = Vec::new();
    let mut ran = 0;
    for &(prog, args) in cases {
        if !Path::new(prog).is_file() || !is_dynamic(prog) {
            eprintln!("skipping {prog}: not a dynamically linked program here");
            continue;
        }
        let native = run_command(Path::new(prog), args);
        for p in platforms_under_test() {
            let mut vargs = vec!["run", "--platform", &p, "--", prog];
            vargs.extend_from_slice(args);
            let sandboxed = run_vmm_raw(&vargs);
            ran += 1;
            if let Err(e) = check_same(&native, &sandboxed) {
                failures.push(format!("=== {prog} {args:?} [{p}]\n{e}"));
            }
        }
    }
    if ran == 0 {
        eprintln!("skipping dynamic_programs_match_native: no dynamically linked program found");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether the ELF file at `path` names an interpreter (`PT_INTERP`).
fn is_dynamic(path: &str) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phnum) = (u64_at(32), u16_at(56));
    (0..phnum).any(|i| {
        let o = phoff + i * 56;
        o + 4 <= bytes.len() && u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) == 3
    })
}
