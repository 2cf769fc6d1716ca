//! Build glue for the kvm guest image.
//!
//! The guest image is the `sentry-kernel` binary of `guest-sentry`, built for
//! `x86_64-unknown-none` with the link script `kernel.ld` beside this crate. `vmm`'s build
//! script calls [`build_guest_image`] so that a plain `cargo build` produces it: no manual step.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The link script, for whoever needs to name it.
pub fn link_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel.ld")
}

/// The target the guest image is built for.
pub const GUEST_TARGET: &str = "x86_64-unknown-none";

/// Builds the guest image with a nested `cargo build` into `target_dir` and returns the path
/// of the ELF file. Meant to be called from a build script: it prints the `rerun-if-changed`
/// lines for every source the image is made of.
pub fn build_guest_image(workspace_root: &Path, target_dir: &Path) -> Result<PathBuf, String> {
    for dir in [
        "guest-sentry/src",
        "ring0/src",
        "pagetables/src",
        "linker/kernel.ld",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace_root.join(dir).display()
        );
    }
    for manifest in [
        "guest-sentry/Cargo.toml",
        "ring0/Cargo.toml",
        "pagetables/Cargo.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace_root.join(manifest).display()
        );
    }

    let rustflags = [
        "-Crelocation-model=static",
        "-Ccode-model=kernel",
        "-Cforce-frame-pointers=yes",
        &format!("-Clink-arg=-T{}", link_script().display()),
        "-Clink-arg=--no-pie",
        "-Clink-arg=-zmax-page-size=4096",
    ]
    .join("\x1f");

    // VMM_GUEST_TOOLCHAIN: a rustup toolchain for the guest image other than the outer
    // build's (the fuzz targets build with a nightly that may lack the guest target).
    let mut cmd = match std::env::var("VMM_GUEST_TOOLCHAIN") {
        Ok(toolchain) => {
            let mut c = Command::new("rustup");
            c.args(["run", &toolchain, "cargo"])
                .env_remove("RUSTC")
                .env_remove("RUSTUP_TOOLCHAIN");
            c
        }
        Err(_) => Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())),
    };
    println!("cargo:rerun-if-env-changed=VMM_GUEST_TOOLCHAIN");
    cmd.current_dir(workspace_root)
        .args([
            "build",
            "--release",
            "-p",
            "guest-sentry",
            "--bin",
            "sentry-kernel",
            "--features",
            "kernel",
            "--target",
            GUEST_TARGET,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        // The outer build's flags (e.g. +crt-static for the rig) are for the host, not the guest.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags);
    // Variables cargo sets for the *outer* build script must not leak into the inner build.
    for (key, _) in std::env::vars_os() {
        if let Some(k) = key.to_str() {
            if k.starts_with("CARGO_FEATURE_")
                || k.starts_with("CARGO_CFG_")
                || k.starts_with("DEP_")
                || k == "TARGET"
                || k == "HOST"
                || k == "OUT_DIR"
                || k == "PROFILE"
                || k == "OPT_LEVEL"
                || k == "DEBUG"
            {
                cmd.env_remove(&key);
            }
        }
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo to build the guest image: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the guest image failed ({status}); is the target installed? \
             rustup target add {GUEST_TARGET}"
        ));
    }
    Ok(target_dir
        .join(GUEST_TARGET)
        .join("release")
        .join("sentry-kernel"))
}
