//! Compiles every `progs/*.c` into static x86-64 executables, one directory
//! per C library / link mode ("variant"), under `$OUT_DIR/progs/<variant>/`.
//!
//! Variants:
//! - `musl`:      `musl-gcc -static -O2`                (ELF EXEC, no interpreter)
//! - `musl-pie`:  musl static-pie                      (ELF DYN, no interpreter)
//! - `glibc`:     `gcc -static -O2 -no-pie`            (ELF EXEC, no interpreter)
//! - `glibc-pie`: `gcc -static-pie -fPIE -O2`          (ELF DYN, no interpreter)
//!
//! Debian's `musl-gcc` wrapper cannot produce static-pie binaries by itself:
//! its specs file replaces gcc's link rule (always `-dynamic-linker
//! /lib/ld-musl-x86_64.so.1`, never `-static -pie`) and always starts with
//! `Scrt1.o`. So `musl-pie` uses the same specs file with two substitutions:
//! `rcrt1.o` (musl's self-relocating start file) and the static-pie link rule.
//! If that cannot be derived, the variant is dropped with a warning.
//!
//! The exported `VMM_TEST_PROGS_DIR` holds only the variants that were built.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const MUSL_SPECS_DEFAULTS: &[&str] = &[
    "/usr/lib/x86_64-linux-musl/musl-gcc.specs",
    "/usr/lib/musl/lib/musl-gcc.specs",
    "/usr/local/musl/lib/musl-gcc.specs",
];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// ELF EXEC, no PT_INTERP.
    Static,
    /// ELF DYN, no PT_INTERP (static-pie).
    StaticPie,
}

struct Variant {
    name: &'static str,
    cc: String,
    flags: Vec<String>,
    kind: Kind,
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let progs_src = manifest.join("progs");
    println!("cargo:rerun-if-changed=progs");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=REALGCC");

    if !runs("musl-gcc", &["--version"]) {
        eprintln!("error: musl-gcc not found: install musl-tools: apt-get install musl-tools");
        std::process::exit(1);
    }
    if !runs("gcc", &["--version"]) {
        eprintln!("error: gcc not found: install gcc: apt-get install gcc");
        std::process::exit(1);
    }

    let mut sources: Vec<PathBuf> = fs::read_dir(&progs_src)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", progs_src.display())))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    if sources.is_empty() {
        fail(&format!("no .c files in {}", progs_src.display()));
    }

    let progs_out = out.join("progs");
    // Start clean so a dropped variant never leaves stale binaries behind.
    let _ = fs::remove_dir_all(&progs_out);
    fs::create_dir_all(&progs_out).unwrap();

    let common = ["-O2", "-Wall", "-Wextra", "-g0"];
    let mut variants = vec![
        Variant {
            name: "musl",
            cc: "musl-gcc".into(),
            flags: strs(&["-static"]),
            kind: Kind::Static,
        },
        Variant {
            name: "glibc",
            cc: "gcc".into(),
            flags: strs(&["-static", "-no-pie"]),
            kind: Kind::Static,
        },
        Variant {
            name: "glibc-pie",
            cc: "gcc".into(),
            flags: strs(&["-static-pie", "-fPIE"]),
            kind: Kind::StaticPie,
        },
    ];
    match musl_static_pie_specs(&out) {
        Ok(specs) => variants.insert(
            1,
            Variant {
                name: "musl-pie",
                cc: std::env::var("REALGCC").unwrap_or_else(|_| "gcc".into()),
                flags: vec![
                    "-specs".into(),
                    specs.display().to_string(),
                    "-static-pie".into(),
                    "-fPIE".into(),
                ],
                kind: Kind::StaticPie,
            },
        ),
        Err(why) => println!("cargo:warning=musl-pie variant dropped: {why}"),
    }

    let mut jobs = Vec::new();
    for v in &variants {
        let dir = progs_out.join(v.name);
        fs::create_dir_all(&dir).unwrap();
        for src in &sources {
            let name = src.file_stem().unwrap().to_str().unwrap().to_string();
            jobs.push((v, src.clone(), dir.join(name)));
        }
    }

    let have_file = runs("file", &["--version"]);
    if !have_file {
        println!("cargo:warning=`file` not installed; checking ELF headers only");
    }

    let errors: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(v, src, dst)| s.spawn(move || build_one(v, &common, src, dst, have_file)))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap().err())
            .collect()
    });
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        fail(&format!("{} test program build(s) failed", errors.len()));
    }

    for name in ["go_threads", "go_http"] {
        build_go(name, &progs_src.join(name), &progs_out.join("go"), &out);
    }
    println!("cargo:rustc-env=VMM_TEST_PROGS_DIR={}", progs_out.display());
}

/// A Go test program (`progs/NAME`), static (`CGO_ENABLED=0`), as `<progs>/go/NAME`, where Go
/// is installed (Debian's `golang-go`); the test that runs it skips, saying so, where it was
/// not built.
fn build_go(name: &str, src: &Path, dst_dir: &Path, out: &Path) {
    println!("cargo:rerun-if-changed={}", src.display());
    if !runs("go", &["version"]) {
        println!(
            "cargo:warning=go not found: the Go test {name} will skip (apt-get install golang-go)"
        );
        return;
    }
    let _ = fs::create_dir_all(dst_dir);
    let st = Command::new("go")
        .args(["build", "-o"])
        .arg(dst_dir.join(name))
        .arg(".")
        .current_dir(src)
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", out.join("gocache"))
        .env("GOPATH", out.join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .status();
    if !st.is_ok_and(|s| s.success()) {
        println!(
            "cargo:warning=go build of {} failed: the Go test {name} will skip",
            src.display()
        );
    }
}

fn strs(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn build_one(
    v: &Variant,
    common: &[&str],
    src: &Path,
    dst: &Path,
    have_file: bool,
) -> Result<(), String> {
    let out = Command::new(&v.cc)
        .args(&v.flags)
        .args(common)
        .arg("-o")
        .arg(dst)
        .arg(src)
        .output()
        .map_err(|e| format!("[{}] cannot run {}: {e}", v.name, v.cc))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "[{}] {} failed ({}):\n{stderr}",
            v.name,
            src.display(),
            out.status
        ));
    }
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("cargo:warning=[{}] {line}", v.name);
    }
    check_elf(dst, v.kind).map_err(|e| format!("[{}] {}: {e}", v.name, dst.display()))?;
    if have_file {
        check_file(dst, v.kind).map_err(|e| format!("[{}] {}: {e}", v.name, dst.display()))?;
    }
    Ok(())
}

/// Checks e_type and the absence of PT_INTERP by reading the ELF headers.
fn check_elf(path: &Path, kind: Kind) -> Result<(), String> {
    let b = fs::read(path).map_err(|e| e.to_string())?;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return Err("not an ELF64 little-endian file".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let e_type = u16_at(16);
    let e_machine = u16_at(18);
    let phoff = u64_at(32) as usize;
    let phentsize = u16_at(54) as usize;
    let phnum = u16_at(56) as usize;
    if e_machine != 62 {
        return Err(format!("e_machine {e_machine}, want 62 (x86-64)"));
    }
    let want = match kind {
        Kind::Static => 2,
        Kind::StaticPie => 3,
    };
    if e_type != want {
        return Err(format!("e_type {e_type}, want {want}"));
    }
    let mut has_dynamic = false;
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > b.len() {
            return Err("program headers out of range".into());
        }
        match u32_at(o) {
            3 => return Err("has PT_INTERP (not static)".into()),
            2 => has_dynamic = true,
            _ => {}
        }
    }
    if kind == Kind::StaticPie && !has_dynamic {
        return Err("static-pie without PT_DYNAMIC".into());
    }
    Ok(())
}

/// Cross-checks with file(1), as a human would.
fn check_file(path: &Path, kind: Kind) -> Result<(), String> {
    let out = Command::new("file")
        .arg("-b")
        .arg(path)
        .output()
        .map_err(|e| e.to_string())?;
    let desc = String::from_utf8_lossy(&out.stdout).to_string();
    let ok = match kind {
        Kind::Static => desc.contains("LSB executable") && desc.contains("statically linked"),
        Kind::StaticPie => desc.contains("static-pie linked") && !desc.contains("interpreter"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("file(1) says: {}", desc.trim()))
    }
}

/// Derives a static-pie specs file from the one `musl-gcc` uses.
fn musl_static_pie_specs(out: &Path) -> Result<PathBuf, String> {
    let specs = find_musl_specs().ok_or("cannot locate musl-gcc.specs")?;
    let text = fs::read_to_string(&specs).map_err(|e| format!("{}: {e}", specs.display()))?;
    let lib_dir = specs.parent().unwrap();
    let rcrt1 = lib_dir.join("rcrt1.o");
    if !rcrt1.exists() {
        return Err(format!("{} missing", rcrt1.display()));
    }

    let mut result = Vec::new();
    let mut lines = text.lines().peekable();
    let (mut did_start, mut did_link) = (false, false);
    while let Some(line) = lines.next() {
        result.push(line.to_string());
        let section = line.trim();
        if section == "*startfile:" || section == "*link:" {
            let Some(body) = lines.next() else { break };
            if section == "*startfile:" {
                if !body.contains("Scrt1.o") {
                    return Err(format!("unexpected *startfile in {}", specs.display()));
                }
                result.push(body.replace("Scrt1.o", "rcrt1.o"));
                did_start = true;
            } else {
                result.push("-nostdlib -static -pie --no-dynamic-linker -z text".into());
                did_link = true;
            }
        }
    }
    if !(did_start && did_link) {
        return Err(format!(
            "no *startfile/*link sections in {}",
            specs.display()
        ));
    }
    let dst = out.join("musl-static-pie.specs");
    fs::write(&dst, result.join("\n") + "\n").map_err(|e| e.to_string())?;
    Ok(dst)
}

fn find_musl_specs() -> Option<PathBuf> {
    // The wrapper script names its specs file: `... -specs "/path/musl-gcc.specs"`.
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        let Ok(script) = fs::read_to_string(dir.join("musl-gcc")) else {
            continue;
        };
        for tok in script.split_whitespace() {
            let t = tok.trim_matches(|c| c == '"' || c == '\'');
            if t.ends_with("musl-gcc.specs") && Path::new(t).exists() {
                return Some(PathBuf::from(t));
            }
        }
    }
    MUSL_SPECS_DEFAULTS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}
