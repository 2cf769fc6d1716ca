//! The escape catalogue as tests: each hostile attempt (`progs/escape_*.c`, never run
//! natively) must be refused or harmless, on every platform under test and in every root
//! mode: the default root (the host's `/` under the overlay), `--root FIXTURE`, `--root
//! FIXTURE --ro` and `--root COPY --rw`. Each run gets a fresh fixture:
//!
//! ```text
//! BASE/root/      the fixture (prog, etc/hostname, etc/mtab -> ../proc/self/mounts, tmp/,
//!                 links/: symlinks to /proc/self/{maps,mem}, /proc/1/environ, host devices,
//!                 a loop, a 41-link chain, climbs to ../../outside; devnodes/: host device
//!                 nodes made with mknod; swap/: l -> inside/, which one case swaps on the
//!                 host while it runs)
//! BASE/outside/   a sibling of the root holding `secret`
//! ```
//!
//! The program prints PASS/FAIL lines and exits with its FAIL count; the harness fails a run
//! on any FAIL line, when vmm does not exit with the program's status (or crashes, panics,
//! hangs, leaves host processes behind), when `outside` or (but with `--rw`) the fixture
//! changed on the host, when a new entry appears in `/`, `/tmp` or the working directory, or
//! when the host's mount table changed; some cases check more (host mounts shown, host
//! processes counted, a directory made through `int $0x80`).

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vmm_tests::hostcheck::{
    copy_tree, names, new_names, run_watched, snapshot, vmm_problems, watched_dirs, Watched,
};
use vmm_tests::{platforms_under_test, prog_path, temp_path, variants, vmm_bin_or_panic};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Default,
    Fixture,
    Ro,
    Rw,
}

const ALL: &[Mode] = &[Mode::Default, Mode::Fixture, Mode::Ro, Mode::Rw];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Default => "default",
            Mode::Fixture => "fixture",
            Mode::Ro => "ro",
            Mode::Rw => "rw",
        }
    }
}

const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Host devices the fixture holds nodes of: (name, major, minor, host path).
const DEVICES: [(&str, u32, u32, &str); 6] = [
    ("kmsg", 1, 11, "/dev/kmsg"),
    ("vcs", 7, 0, "/dev/vcs"),
    ("cpuid", 203, 0, "/dev/cpu/0/cpuid"),
    ("hwrng", 10, 183, "/dev/hwrng"),
    ("mem", 1, 1, "/dev/mem"),
    ("port", 1, 4, "/dev/port"),
];

fn mknod_char(path: &Path, major: u32, minor: u32) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    if unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | 0o600,
            libc::makedev(major, minor),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Builds BASE/root and BASE/outside; returns whether the device nodes could be made.
fn fixture(base: &Path, prog: &Path) -> bool {
    let root = base.join("root");
    for d in ["etc", "tmp", "links", "devnodes", "data"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/secret"), "SECRET-OUTSIDE\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy(prog, root.join("prog")).unwrap();
    std::fs::write(root.join("etc/hostname"), "inside-root\n").unwrap();
    symlink("../proc/self/mounts", root.join("etc/mtab")).unwrap();
    let l = root.join("links");
    for (name, target) in [
        ("maps", "/proc/self/maps"),
        ("maps_rel", "../../../../../../../../proc/self/maps"),
        ("mem", "/proc/self/mem"),
        ("env1", "/proc/1/environ"),
        ("loop", "loop"),
        ("ping", "pong"),
        ("pong", "ping"),
        ("out", "../../outside"),
        ("outabs", "/../outside"),
    ] {
        symlink(target, l.join(name)).unwrap();
    }
    std::fs::write(l.join("target"), "chain-ok\n").unwrap();
    std::fs::create_dir_all(root.join("swap/inside")).unwrap();
    std::fs::write(root.join("swap/inside/secret"), "inside\n").unwrap();
    symlink("inside", root.join("swap/l")).unwrap();
    symlink("target", l.join("c0")).unwrap();
    for k in 1..=40 {
        symlink(format!("c{}", k - 1), l.join(format!("c{k}"))).unwrap();
    }
    let mut nodes = true;
    for (name, major, minor, host) in DEVICES {
        symlink(host, l.join(format!("dev_{name}"))).unwrap();
        if mknod_char(&root.join("devnodes").join(name), major, minor).is_err() {
            nodes = false;
        }
    }
    nodes
}

fn host_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default()
}

/// A mount line of the host whose mount point the sandbox would not have of its own.
fn distinctive_mount(line: &str) -> bool {
    let mp = line.split_whitespace().nth(1).unwrap_or("");
    ![
        "/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/tmp", "/run",
    ]
    .contains(&mp)
}

struct Case {
    prog: &'static str,
    case: &'static str,
    flags: &'static [&'static str],
    modes: &'static [Mode],
    /// What the host does to the fixture while the program runs (given BASE; until the flag
    /// says stop). Its changes are below `root/swap`, which the root's snapshots leave out.
    during: Option<fn(&Path, &AtomicBool)>,
}

/// Extra, case-specific host checks after a run.
type After<'a> = &'a dyn Fn(&Watched, &Path, Mode) -> Vec<String>;

fn run_case(p: &str, c: &Case, mode: Mode, extra: &[String], after: After) -> Result<(), String> {
    let variant = variants()[0];
    let prog = prog_path(variant, c.prog);
    let base = temp_path(&format!("esc-{}-{}", c.case, mode.name()));
    let nodes = fixture(&base, &prog);
    let root = base.join("root");
    let vmm = vmm_bin_or_panic();
    let root_s = root.to_str().unwrap().to_string();
    let prog_s = prog.to_str().unwrap().to_string();
    // SAFETY: getpid has no preconditions.
    let test_pid = unsafe { libc::getpid() }.to_string();
    let vmm_s = vmm.to_str().unwrap().to_string();
    // `sh -c 'exec "$@" "$$"'`: vmm gets the shell's pid, so the program learns vmm's host pid
    // as its last argument.
    let mut args: Vec<String> = vec![
        "-c".into(),
        "exec \"$@\" \"$$\"".into(),
        "sh".into(),
        vmm_s.clone(),
        "run".into(),
        "--platform".into(),
        p.into(),
    ];
    match mode {
        Mode::Default => {}
        Mode::Fixture => args.extend(["--root".into(), root_s.clone()]),
        Mode::Ro => args.extend(["--root".into(), root_s.clone(), "--ro".into()]),
        Mode::Rw => args.extend(["--root".into(), root_s.clone(), "--rw".into()]),
    }
    args.extend(c.flags.iter().map(|s| s.to_string()));
    args.push("--".into());
    let (fix, prog_arg) = match mode {
        Mode::Default => (root_s.clone(), prog_s),
        _ => (String::new(), "/prog".to_string()),
    };
    args.extend([
        prog_arg,
        c.case.into(),
        fix,
        mode.name().into(),
        test_pid,
        vmm_s,
    ]);
    args.extend(extra.iter().cloned());

    // The part of the root the host itself changes during the run is not the sandbox's doing.
    let root_snapshot = |root: &Path| -> Vec<String> {
        let s = snapshot(root);
        match c.during {
            Some(_) => s.into_iter().filter(|l| !l.starts_with("swap")).collect(),
            None => s,
        }
    };
    let root_before = root_snapshot(&root);
    let outside_before = snapshot(&base.join("outside"));
    let dirs: Vec<PathBuf> = watched_dirs();
    let dirs_before: Vec<_> = dirs.iter().map(|d| names(d)).collect();
    let mounts_before = host_mounts();
    let host_before = hostname();

    let stop = AtomicBool::new(false);
    let w = std::thread::scope(|scope| {
        if let Some(during) = c.during {
            let (base, stop) = (&base, &stop);
            scope.spawn(move || during(base, stop));
        }
        let w = run_watched(Path::new("/bin/sh"), &args, RUN_LIMIT);
        stop.store(true, Ordering::Relaxed);
        w
    });

    let mut problems = vmm_problems(&w);
    let stdout = w.out.stdout_str();
    let fails: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
    match stdout
        .lines()
        .find_map(|l| l.strip_prefix("END fails="))
        .and_then(|n| n.trim().parse::<i32>().ok())
    {
        None => problems.push(format!(
            "the program did not finish (vmm exit status {})",
            w.out.code()
        )),
        Some(n) if n != w.out.code() => {
            problems.push(format!("vmm exited {}, the program {n}", w.out.code()))
        }
        Some(_) => {}
    }
    for f in &fails {
        problems.push(f.to_string());
    }
    let outside_after = snapshot(&base.join("outside"));
    if outside_after != outside_before {
        problems.push(format!(
            "the root's sibling directory changed on the host:\n{}",
            vmm_tests::line_diff(&outside_before.join("\n"), &outside_after.join("\n"))
        ));
    }
    if base.join("outside").exists() {
        let extra_in_base = new_names(
            &["root", "outside"]
                .iter()
                .map(std::ffi::OsString::from)
                .collect(),
            &names(&base),
        );
        if !extra_in_base.is_empty() {
            problems.push(format!("new entries next to the root: {extra_in_base:?}"));
        }
    }
    let root_after = root_snapshot(&root);
    if mode != Mode::Rw && root_after != root_before {
        problems.push(format!(
            "the fixture changed on the host without --rw:\n{}",
            vmm_tests::line_diff(&root_before.join("\n"), &root_after.join("\n"))
        ));
    }
    if mode == Mode::Rw {
        let before: std::collections::BTreeSet<&String> = root_before.iter().collect();
        let new_nodes: Vec<&String> = root_after
            .iter()
            .filter(|l| l.contains(" dev ") && !before.contains(l))
            .collect();
        if !new_nodes.is_empty() {
            problems.push(format!("device nodes made in the root: {new_nodes:?}"));
        }
    }
    for (d, b) in dirs.iter().zip(&dirs_before) {
        let new = new_names(b, &names(d));
        if !new.is_empty() {
            problems.push(format!("new host entries in {}: {new:?}", d.display()));
        }
    }
    if host_mounts() != mounts_before {
        problems.push("the host's mount table changed".into());
    }
    if hostname() != host_before {
        problems.push("the host's hostname changed".into());
    }
    problems.extend(after(&w, &base, mode));
    let _ = std::fs::remove_dir_all(&base);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "=== {} [{p}/{}]{}\n  {}\n{}",
            c.case,
            mode.name(),
            if nodes {
                ""
            } else {
                " (no device nodes: mknod failed)"
            },
            problems.join("\n  "),
            w.out
        ))
    }
}

fn run_all(c: &Case, extra: &dyn Fn(Mode, &Path) -> Vec<String>, after: After) {
    let mut failures = Vec::new();
    let mut total = 0;
    for p in platforms_under_test() {
        for &m in c.modes {
            total += 1;
            // The extra arguments may name paths in the run's fixture; they are computed
            // from where it will be in that mode.
            let ex = extra(m, Path::new(""));
            if let Err(e) = run_case(&p, c, m, &ex, after) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} of {total} run(s) failed\n\n{}",
        c.case,
        failures.len(),
        failures.join("\n\n")
    );
}

fn none(_: Mode, _: &Path) -> Vec<String> {
    Vec::new()
}

fn nothing(_: &Watched, _: &Path, _: Mode) -> Vec<String> {
    Vec::new()
}

fn simple(prog: &'static str, case: &'static str, flags: &'static [&'static str]) {
    run_all(
        &Case {
            prog,
            case,
            flags,
            modes: ALL,
            during: None,
        },
        &none,
        &nothing,
    );
}

/// The fixture's chain is what Linux allows: 40 links resolve, 41 give ELOOP (checked
/// natively, so the sandbox cases below hold it to Linux's limit, not to a guess).
#[test]
fn linux_symlink_limit_is_40() {
    let base = temp_path("esc-linux-chain");
    fixture(&base, &prog_path(variants()[0], "escape_links"));
    let l = base.join("root/links");
    assert_eq!(
        std::fs::read_to_string(l.join("c39")).unwrap(),
        "chain-ok\n"
    );
    let e = std::fs::File::open(l.join("c40")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn proc_self_maps_links_show_no_host_mappings() {
    simple("escape_proc", "maps", &[]);
}

#[test]
fn proc_self_mem_links() {
    simple("escape_proc", "mem", &[]);
}

#[test]
fn environ_of_host_pids_and_init() {
    simple("escape_proc", "environ", &[]);
}

#[test]
fn etc_mtab_shows_no_host_mounts() {
    let host: Vec<String> = host_mounts()
        .into_iter()
        .filter(|l| distinctive_mount(l))
        .collect();
    let check = move |w: &Watched, _: &Path, _: Mode| -> Vec<String> {
        let shown: Vec<String> = w
            .out
            .stdout_str()
            .lines()
            .filter_map(|l| l.strip_prefix("MOUNT "))
            .filter(|l| host.iter().any(|h| h == l))
            .map(str::to_string)
            .collect();
        if shown.is_empty() {
            Vec::new()
        } else {
            vec![format!("host mounts shown in the sandbox: {shown:?}")]
        }
    };
    run_all(
        &Case {
            prog: "escape_proc",
            case: "mtab",
            flags: &[],
            modes: ALL,
            during: None,
        },
        &none,
        &check,
    );
}

#[test]
fn dotdot_and_magic_links_stay_in_the_root() {
    simple("escape_proc", "magic", &[]);
}

#[test]
fn host_devices_cannot_be_opened() {
    simple("escape_dev", "devices", &[]);
}

#[test]
fn symlink_loop_gives_eloop() {
    simple("escape_links", "loop", &[]);
}

#[test]
fn symlink_chain_limit_is_40() {
    simple("escape_links", "chain", &[]);
}

/// The host swaps BASE/root/swap/l between a directory inside the root and links out of it
/// (the host path of `outside`, and a climb there), as fast as it can, until stopped.
fn swap_links(base: &Path, stop: &AtomicBool) {
    let swap = base.join("root/swap");
    let targets = [
        PathBuf::from("inside"),
        base.join("outside"),
        PathBuf::from("../../outside"),
    ];
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let new = swap.join("l.new");
        let _ = std::fs::remove_file(&new);
        let _ = symlink(&targets[n % targets.len()], &new);
        let _ = std::fs::rename(&new, swap.join("l"));
        n += 1;
    }
}

/// Links swapped on the host while the sandbox walks through them (a check made on one
/// target, the open done on another) never reach outside the root: each open is resolved
/// inside it by the host, whatever the link says at that moment.
#[test]
fn symlink_swaps_racing_the_walk_stay_inside() {
    run_all(
        &Case {
            prog: "escape_links",
            case: "swap",
            flags: &[],
            // In the default root the host's whole tree is the sandbox's: `outside` is in it.
            modes: &[Mode::Fixture, Mode::Ro, Mode::Rw],
            during: Some(swap_links),
        },
        &none,
        &nothing,
    );
}

#[test]
fn huge_sparse_files_hold_no_memory_and_fail_cleanly() {
    simple("escape_limits", "truncate", &[]);
}

#[test]
fn overlay_cannot_outgrow_memory() {
    simple("escape_limits", "fill", &["--memory", "64"]);
}

#[test]
fn touching_1g_under_memory_256() {
    run_all(
        &Case {
            prog: "escape_limits",
            case: "mmap1g",
            flags: &["--memory", "256"],
            modes: &[Mode::Default, Mode::Fixture],
            during: None,
        },
        &none,
        &nothing,
    );
}

#[test]
fn fork_bomb_is_bounded_by_pids_limit() {
    let check = |w: &Watched, _: &Path, _: Mode| -> Vec<String> {
        let mut v = Vec::new();
        if !w.out.stdout_str().contains("HOLD ") {
            v.push("the program never held its children".into());
        }
        if w.peak > 20 {
            v.push(format!(
                "{} host processes below vmm at the peak under --pids-limit 20",
                w.peak
            ));
        }
        v
    };
    run_all(
        &Case {
            prog: "escape_limits",
            case: "forkbomb",
            flags: &["--pids-limit", "20"],
            modes: &[Mode::Default, Mode::Fixture],
            during: None,
        },
        &none,
        &check,
    );
}

#[test]
fn mknod_is_refused() {
    simple("escape_sys", "mknod", &[]);
}

#[test]
fn mount_chroot_unshare_pivot_root_are_harmless() {
    simple("escape_sys", "namespaces", &[]);
}

#[test]
fn host_pids_are_out_of_reach() {
    simple("escape_sys", "hostpids", &[]);
}

#[test]
fn io_uring_bpf_perf_userfaultfd_are_refused() {
    simple("escape_sys", "newapis", &[]);
}

#[test]
fn int80_i386_mkdir_is_enosys() {
    // Default mode: a host path next to the fixture; else a path in the root. The fixture's
    // base is only known inside run_case, so the default mode's path is a fixed name in the
    // temp dir, unique to this process.
    let host_dir = temp_path("esc-int80-dir");
    let hd = host_dir.clone();
    let extra = move |m: Mode, _: &Path| -> Vec<String> {
        vec![match m {
            Mode::Default => hd.to_str().unwrap().to_string(),
            _ => "/int80dir".to_string(),
        }]
    };
    let hd2 = host_dir.clone();
    let check = move |_: &Watched, base: &Path, _: Mode| -> Vec<String> {
        let mut v = Vec::new();
        for p in [hd2.clone(), base.join("root/int80dir"), "/int80dir".into()] {
            if p.exists() {
                v.push(format!("int $0x80 mkdir made {} on the host", p.display()));
                let _ = std::fs::remove_dir(&p);
            }
        }
        v
    };
    run_all(
        &Case {
            prog: "escape_sys",
            case: "int80",
            flags: &[],
            modes: ALL,
            during: None,
        },
        &extra,
        &check,
    );
}

#[test]
fn writes_aimed_outside_the_root_stay_inside() {
    simple("escape_rw", "outside", &[]);
}

/// copy_tree keeps device nodes and links (the fuzz fixture and this one rely on it).
#[test]
fn fixture_copies_faithfully() {
    let base = temp_path("esc-copy");
    fixture(&base, &prog_path(variants()[0], "escape_links"));
    let copy = temp_path("esc-copy-dst");
    copy_tree(&base.join("root"), &copy).unwrap();
    let strip = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|l| l.split(" mode ").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(strip(snapshot(&base.join("root"))), strip(snapshot(&copy)));
    let _ = std::fs::remove_dir_all(&base);
    let _ = std::fs::remove_dir_all(&copy);
}
