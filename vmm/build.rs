//! Builds the kvm guest image (the Sentry as a kernel) and embeds its path for `include_bytes!`.
use std::path::PathBuf;

/// Builds the benchmark program (`vmm bench`) static with the C compiler, for embedding.
fn build_bench_program(manifest: &std::path::Path, out: &std::path::Path) {
    let src = manifest.join("bench/bench_prog.c");
    println!("cargo:rerun-if-changed={}", src.display());
    let bin = out.join("bench_prog");
    let cc = std::env::var("VMM_BENCH_CC").unwrap_or_else(|_| "cc".into());
    let status = std::process::Command::new(&cc)
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status();
    match status {
        Ok(s) if s.success() => println!("cargo:rustc-env=VMM_BENCH_PROG={}", bin.display()),
        other => {
            eprintln!("error: building {} with {cc} failed: {other:?} (a C compiler with static libc is needed)", src.display());
            std::process::exit(1);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    build_bench_program(&manifest, &out);
    match linker::build_guest_image(&root, &out.join("guest-target")) {
        Ok(image) => println!("cargo:rustc-env=VMM_GUEST_IMAGE={}", image.display()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
