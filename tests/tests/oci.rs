//! vmm as an OCI runtime: the runc command line (`create`/`start`/`state`/`kill`/`delete`/
//! `run --bundle`/`list`/`ps`/`features`) on bundles built from busybox-static, on every
//! platform usable here (the `dev.vmm.platform` annotation picks it); bad input (one clear
//! stderr line, exit 1, no state left behind); and the real engines (containerd's `ctr`,
//! Docker) through `tests/oci/engines`. Scratch files live under cargo's target tmp dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vmm_tests::{platforms_under_test, vmm_bin_or_panic};

static N: AtomicU32 = AtomicU32::new(0);

/// A fresh scratch directory (removed on drop).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "oci-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn have_busybox() -> bool {
    let ok = Path::new("/bin/busybox").exists();
    if !ok {
        eprintln!("skipping: /bin/busybox is not installed (apt-get install busybox-static)");
    }
    ok
}

/// A JSON string.
fn js(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Makes `dir/rootfs` (busybox and its applets) and `dir/config.json` running `sh -c SCRIPT`
/// on `platform`; `extra` is spliced into the top-level object.
fn bundle(dir: &Path, platform: &str, script: &str, extra: &str) {
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for a in [
        "sh", "echo", "cat", "sleep", "env", "pwd", "touch", "ls", "uname", "true", "grep", "sort",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
    std::fs::write(dir.join("rootfs/etc/marker"), "in-the-bundle\n").unwrap();
    config(dir, platform, script, extra);
}

fn config(dir: &Path, platform: &str, script: &str, extra: &str) {
    let cfg = format!(
        r#"{{"ociVersion":"1.0.2",
  "process":{{"terminal":false,"user":{{"uid":0,"gid":0}},"args":["sh","-c",{}],
    "env":["PATH=/bin","ONE=1","TWO=two words"],"cwd":"/work"}},
  "root":{{"path":"rootfs","readonly":false}},
  "mounts":[{{"destination":"/proc","type":"proc","source":"proc"}},
    {{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid"]}}],
  "annotations":{{"dev.vmm.platform":{}}}
  {extra}
}}"#,
        js(script),
        js(platform)
    );
    std::fs::write(dir.join("config.json"), cfg).unwrap();
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `vmm --root STATE ARGS`, its stdio captured (stdin /dev/null). The container process of a
/// `create` inherits stdout and stderr: pass `out` to send them to a file instead of the
/// captured pipes (which would stay open while it lives).
fn vmm(state: &Path, args: &[&str], out: Option<&Path>) -> Out {
    let mut c = Command::new(vmm_bin_or_panic());
    c.arg("--root").arg(state).args(args).stdin(Stdio::null());
    let file;
    if let Some(p) = out {
        file = std::fs::File::create(p).unwrap();
        c.stdout(file.try_clone().unwrap()).stderr(file);
        let st = c.status().unwrap();
        return Out {
            code: st.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: std::fs::read_to_string(p).unwrap_or_default(),
        };
    }
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A field of `vmm state`'s JSON, as text (strings unquoted).
fn field(json: &str, name: &str) -> String {
    let key = format!("\"{name}\":");
    let Some(i) = json.find(&key) else {
        return String::new();
    };
    let rest = json[i + key.len()..].trim_start();
    let end = rest.find([',', '\n', '}']).unwrap_or(rest.len());
    rest[..end].trim().trim_matches('"').to_string()
}

fn status_of(state: &Path, id: &str) -> String {
    field(&vmm(state, &["state", id], None).stdout, "status")
}

fn wait_status(state: &Path, id: &str, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if status_of(state, id) == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn wait_file_contains(p: &Path, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::fs::read_to_string(p).is_ok_and(|s| s.contains(want)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// create → state created (the program not yet run) → start → running → kill TERM (the
/// program's trap runs) → stopped → delete; with the pid file, list and ps.
#[test]
fn lifecycle_on_every_platform() {
    if !have_busybox() {
        return;
    }
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let s = Scratch::new("life");
        let b = s.0.join("bundle");
        let st = s.0.join("state");
        bundle(
            &b,
            &p,
            "trap 'echo got TERM; exit 7' TERM; echo started; env | grep -v -e ^PWD= -e ^SHLVL= | sort; pwd; cat /etc/marker; \
             while true; do sleep 1; done",
            "",
        );
        let log = s.0.join("out");
        let pidf = s.0.join("pid");
        let bs = b.to_str().unwrap();
        let mut fail = |m: String| failures.push(format!("[{p}] {m}"));
        let c = vmm(
            &st,
            &[
                "create",
                "--bundle",
                bs,
                "--pid-file",
                pidf.to_str().unwrap(),
                "c1",
            ],
            Some(&log),
        );
        if c.code != 0 {
            fail(format!("create failed:\n{c}"));
            continue;
        }
        let pid = std::fs::read_to_string(&pidf).unwrap_or_default();
        let state = vmm(&st, &["state", "c1"], None);
        if field(&state.stdout, "status") != "created"
            || field(&state.stdout, "pid") != pid
            || field(&state.stdout, "id") != "c1"
            || field(&state.stdout, "ociVersion").is_empty()
            || field(&state.stdout, "dev.vmm.platform") != p
            || !state.stdout.contains(&format!("\"bundle\": {}", js(bs)))
        {
            fail(format!("state after create (pid file {pid:?}):\n{state}"));
        }
        std::thread::sleep(Duration::from_millis(200));
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("started")
        {
            fail("the program ran before start".into());
        }
        let l = vmm(&st, &["list"], None);
        if !l.stdout.contains("c1") || !l.stdout.contains("created") {
            fail(format!("list:\n{l}"));
        }
        let start = vmm(&st, &["start", "c1"], None);
        if start.code != 0 {
            fail(format!("start:\n{start}"));
        }
        if !wait_file_contains(&log, "in-the-bundle") {
            fail(format!(
                "the program did not run after start: {:?}",
                std::fs::read_to_string(&log)
            ));
        }
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        if !out.contains("started\nONE=1\nPATH=/bin\nTWO=two words\n") || !out.contains("\n/work\n")
        {
            fail(format!(
                "the program's environment or cwd is not config.json's exactly:\n{out}"
            ));
        }
        if status_of(&st, "c1") != "running" {
            fail("state after start is not running".into());
        }
        let ps = vmm(&st, &["ps", "--format", "json", "c1"], None);
        if ps.stdout.trim() != format!("[{pid}]") {
            fail(format!("ps --format json:\n{ps}"));
        }
        let again = vmm(&st, &["start", "c1"], None);
        if again.code != 1 || again.stderr.lines().count() != 1 {
            fail(format!("start of a running container:\n{again}"));
        }
        let del = vmm(&st, &["delete", "c1"], None);
        if del.code != 1 || !del.stderr.contains("not stopped") || del.stderr.lines().count() != 1 {
            fail(format!(
                "delete of a running container without --force:\n{del}"
            ));
        }
        let usr1 = vmm(&st, &["kill", "c1", "USR1"], None);
        if usr1.code != 1
            || !usr1.stderr.contains("not delivered")
            || status_of(&st, "c1") != "running"
        {
            fail(format!(
                "kill USR1 (not forwarded by vmm) must be refused:\n{usr1}"
            ));
        }
        let k = vmm(&st, &["kill", "c1", "SIGTERM"], None);
        if k.code != 0 {
            fail(format!("kill:\n{k}"));
        }
        if !wait_status(&st, "c1", "stopped") {
            fail("not stopped after kill TERM".into());
        }
        if !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("got TERM")
        {
            fail("SIGTERM did not reach the program's trap".into());
        }
        if field(&vmm(&st, &["state", "c1"], None).stdout, "pid") != "0" {
            fail("a stopped container's pid is not 0".into());
        }
        let k2 = vmm(&st, &["kill", "c1", "KILL"], None);
        if k2.code != 1 {
            fail(format!("kill of a stopped container:\n{k2}"));
        }
        let d = vmm(&st, &["delete", "c1"], None);
        if d.code != 0 {
            fail(format!("delete of a stopped container:\n{d}"));
        }
        let gone = vmm(&st, &["state", "c1"], None);
        if gone.code != 1 || !gone.stderr.contains("does not exist") {
            fail(format!("state after delete:\n{gone}"));
        }
        if std::fs::read_dir(&st).map(|d| d.count()).unwrap_or(0) != 0 {
            fail("the state directory is not empty after delete".into());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `run --bundle`: stdout and exit status of the program; the state is gone after; a
/// read-only root; kill by number; delete of a created container; `delete --force` of a
/// running one.
#[test]
fn run_and_delete_on_every_platform() {
    if !have_busybox() {
        return;
    }
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let s = Scratch::new("run");
        let b = s.0.join("bundle");
        let st = s.0.join("state");
        let bs = b.to_str().unwrap();
        let mut fail = |m: String| failures.push(format!("[{p}] {m}"));
        bundle(
            &b,
            &p,
            "echo out; echo err >&2; uname -s; uname -n; exit 42",
            ",\"hostname\":\"box-1\"",
        );
        let r = vmm(&st, &["run", "--bundle", bs, "r1"], None);
        if r.code != 42 || r.stdout != "out\nLinux\nbox-1\n" || !r.stderr.contains("err") {
            fail(format!("run --bundle:\n{r}"));
        }
        if st.join("r1").exists() {
            fail("run left its state behind".into());
        }
        // A read-only root: writes fail.
        std::fs::remove_file(b.join("config.json")).unwrap();
        config(&b, &p, "touch /new && echo wrote; echo done", "");
        let cfg = std::fs::read_to_string(b.join("config.json"))
            .unwrap()
            .replace("\"readonly\":false", "\"readonly\":true");
        std::fs::write(b.join("config.json"), cfg).unwrap();
        let r = vmm(&st, &["run", "-b", bs, "r2"], None);
        if r.code != 0 || r.stdout != "done\n" || b.join("rootfs/new").exists() {
            fail(format!("a read-only root was written:\n{r}"));
        }
        // Delete of a created container kills it; kill by number; delete --force.
        config(&b, &p, "sleep 100", "");
        let log = s.0.join("out");
        for id in ["k1", "k2"] {
            let c = vmm(&st, &["create", "--bundle", bs, id], Some(&log));
            if c.code != 0 {
                fail(format!("create {id}:\n{c}"));
            }
        }
        let d = vmm(&st, &["delete", "k1"], None);
        if d.code != 0 || st.join("k1").exists() {
            fail(format!("delete of a created container:\n{d}"));
        }
        let _ = vmm(&st, &["start", "k2"], None);
        let k = vmm(&st, &["kill", "k2", "9"], None);
        if k.code != 0 || !wait_status(&st, "k2", "stopped") {
            fail(format!("kill 9:\n{k}"));
        }
        let _ = vmm(&st, &["delete", "k2"], None);
        let c = vmm(&st, &["run", "--detach", "--bundle", bs, "k3"], Some(&log));
        if c.code != 0 || status_of(&st, "k3") != "running" {
            fail(format!("run --detach:\n{c}"));
        }
        let d = vmm(&st, &["delete", "--force", "k3"], None);
        if d.code != 0 || st.join("k3").exists() {
            fail(format!("delete --force of a running container:\n{d}"));
        }
        let d = vmm(&st, &["delete", "--force", "nothere"], None);
        if d.code != 0 {
            fail(format!("delete --force of an unknown container:\n{d}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bad input: one line on stderr, exit 1, nothing left under the state root (or the existing
/// container untouched), the JSON log line with `--log-format json`.
#[test]
fn bad_input_is_refused_clearly() {
    if !have_busybox() {
        return;
    }
    let platform = platforms_under_test()
        .into_iter()
        .next()
        .unwrap_or_else(|| "auto".into());
    let s = Scratch::new("bad");
    let b = s.0.join("bundle");
    let st = s.0.join("state");
    let bs = b.to_str().unwrap().to_string();
    bundle(&b, &platform, "sleep 100", "");
    let good = std::fs::read_to_string(b.join("config.json")).unwrap();
    let failures = std::cell::RefCell::new(Vec::new());
    let entries = |st: &Path| -> Vec<String> {
        std::fs::read_dir(st)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let check = |what: &str, cfg: Option<&str>, args: &[&str], want: &str| {
        match cfg {
            Some(c) => std::fs::write(b.join("config.json"), c).unwrap(),
            None => {
                let _ = std::fs::remove_file(b.join("config.json"));
            }
        }
        let before = entries(&st);
        let o = vmm(&st, args, None);
        // Warnings (approximated config.json fields) go to stderr without --log: not errors.
        let lines: Vec<&str> = o
            .stderr
            .lines()
            .filter(|l| !l.starts_with("vmm: warning: "))
            .collect();
        if o.code != 1
            || lines.len() != 1
            || !lines[0].starts_with("vmm: ")
            || !o.stderr.contains(want)
        {
            failures.borrow_mut().push(format!(
                "{what}: want exit 1 and one stderr line with {want:?}:\n{o}"
            ));
        }
        if entries(&st) != before {
            failures.borrow_mut().push(format!(
                "{what}: the state root changed: {:?}",
                entries(&st)
            ));
        }
    };
    let create: [&str; 4] = ["create", "--bundle", &bs, "x"];
    check("no config.json", None, &create, "config.json");
    check(
        "malformed config.json",
        Some("{\"process\": [1,"),
        &create,
        "malformed JSON",
    );
    check(
        "nonexistent rootfs",
        Some(&good.replace("\"path\":\"rootfs\"", "\"path\":\"nothere\"")),
        &create,
        "does not exist",
    );
    check(
        "a program missing from the rootfs",
        Some(&good.replace("[\"sh\",\"-c\"", "[\"/bin/nothere\",\"-c\"")),
        &create,
        "nothere",
    );
    check(
        "a bind mount",
        Some(&good.replace(
            "\"mounts\":[",
            "\"mounts\":[{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"/etc\",\"options\":[\"rbind\"]},",
        )),
        &create,
        "bind mounts (volumes) are not supported yet",
    );
    check(
        "a non-root user",
        Some(&good.replace("\"uid\":0", "\"uid\":1000")),
        &create,
        "only uid 0",
    );
    check(
        "an unknown platform",
        Some(&good.replace(
            &format!("\"dev.vmm.platform\":{}", js(&platform)),
            "\"dev.vmm.platform\":\"vax\"",
        )),
        &create,
        "unknown platform",
    );
    check(
        "a terminal without --console-socket",
        Some(&good.replace("\"terminal\":false", "\"terminal\":true")),
        &create,
        "console-socket",
    );
    check(
        "a bad ID",
        Some(&good),
        &["create", "--bundle", &bs, "../x"],
        "invalid container id",
    );
    for cmd in ["start", "state", "kill", "delete", "ps"] {
        check(
            &format!("{cmd} of an unknown ID"),
            Some(&good),
            &[cmd, "nothere"],
            "does not exist",
        );
    }
    // A duplicate ID leaves the first container as it was.
    let log = s.0.join("out");
    let c = vmm(&st, &create, Some(&log));
    if c.code != 0 {
        failures.borrow_mut().push(format!("create:\n{c}"));
    }
    check("a duplicate ID", Some(&good), &create, "already exists");
    if status_of(&st, "x") != "created" {
        failures
            .borrow_mut()
            .push("the first container changed after a duplicate create".into());
    }
    let _ = vmm(&st, &["delete", "--force", "x"], None);
    // The JSON log line.
    let logf = s.0.join("log.json");
    let o = vmm(
        &st,
        &[
            "--log",
            logf.to_str().unwrap(),
            "--log-format",
            "json",
            "start",
            "nothere",
        ],
        None,
    );
    let text = std::fs::read_to_string(&logf).unwrap_or_default();
    if o.code != 1
        || !text.contains("\"level\":\"error\"")
        || !text.contains("\"msg\":\"container nothere does not exist\"")
    {
        failures
            .borrow_mut()
            .push(format!("--log-format json: {text:?}\n{o}"));
    }
    let failures = failures.into_inner();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Hooks: `prestart`/`createRuntime` by create, `poststart` by start, `poststop` by delete,
/// each with the state JSON on stdin; a failing `prestart` fails the create and leaves
/// nothing behind.
#[test]
fn hooks_run_at_their_points() {
    if !have_busybox() {
        return;
    }
    let platform = platforms_under_test()
        .into_iter()
        .next()
        .unwrap_or_else(|| "auto".into());
    let s = Scratch::new("hooks");
    let b = s.0.join("bundle");
    let st = s.0.join("state");
    let out = s.0.join("hooks");
    std::fs::create_dir_all(&out).unwrap();
    let hook = |kind: &str| {
        format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {}/{kind}.json; echo $HOOKVAR >> {}/{kind}.json"],"env":["HOOKVAR=set-{kind}"]}}"#,
            out.display(),
            out.display()
        )
    };
    let extra = format!(
        r#","hooks":{{"prestart":[{}],"createRuntime":[{}],"poststart":[{}],"poststop":[{}]}}"#,
        hook("prestart"),
        hook("createRuntime"),
        hook("poststart"),
        hook("poststop")
    );
    bundle(&b, &platform, "sleep 100", &extra);
    let bs = b.to_str().unwrap();
    let log = s.0.join("out");
    let c = vmm(&st, &["create", "--bundle", bs, "h1"], Some(&log));
    assert_eq!(c.code, 0, "create:\n{c}");
    let read = |k: &str| std::fs::read_to_string(out.join(format!("{k}.json"))).unwrap_or_default();
    for k in ["prestart", "createRuntime"] {
        let t = read(k);
        assert!(
            t.contains("\"status\":\"creating\"")
                && t.contains("\"id\":\"h1\"")
                && t.contains(&format!("set-{k}")),
            "{k} hook: {t:?}"
        );
    }
    assert!(read("poststart").is_empty(), "poststart ran before start");
    assert_eq!(vmm(&st, &["start", "h1"], None).code, 0);
    assert!(
        read("poststart").contains("\"status\":\"running\""),
        "poststart: {:?}",
        read("poststart")
    );
    assert!(read("poststop").is_empty(), "poststop ran before delete");
    assert_eq!(vmm(&st, &["delete", "--force", "h1"], None).code, 0);
    assert!(
        read("poststop").contains("\"status\":\"stopped\""),
        "poststop: {:?}",
        read("poststop")
    );
    // A failing prestart hook.
    std::fs::remove_file(b.join("config.json")).unwrap();
    config(
        &b,
        &platform,
        "sleep 100",
        r#","hooks":{"prestart":[{"path":"/bin/sh","args":["sh","-c","echo no network for you >&2; exit 3"]}]}"#,
    );
    let c = vmm(&st, &["create", "--bundle", bs, "h2"], None);
    assert!(
        c.code == 1
            && c.stderr.contains("prestart hook /bin/sh")
            && c.stderr.contains("no network for you"),
        "a failing prestart hook:\n{c}"
    );
    assert!(!st.join("h2").exists(), "a failed create left its state");
}

/// `linux.cgroupsPath` (relative: under the test's own cgroup) with memory and pids limits:
/// the container process is in the group with the limits set; delete removes the group.
#[test]
fn cgroups_path_is_joined() {
    if !have_busybox() {
        return;
    }
    if !Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists()
        && !Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
    {
        eprintln!("skipping: no memory cgroup hierarchy mounted here");
        return;
    }
    let platform = platforms_under_test()
        .into_iter()
        .next()
        .unwrap_or_else(|| "auto".into());
    let s = Scratch::new("cg");
    let b = s.0.join("bundle");
    let st = s.0.join("state");
    let parent = format!("vmm-oci-test-{}", std::process::id());
    bundle(
        &b,
        &platform,
        "sleep 100",
        &format!(
            r#","linux":{{"cgroupsPath":"{parent}/c1","resources":{{"memory":{{"limit":201326592}},"pids":{{"limit":77}}}}}}"#
        ),
    );
    let pidf = s.0.join("pid");
    let c = vmm(
        &st,
        &[
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--pid-file",
            pidf.to_str().unwrap(),
            "g1",
        ],
        Some(&s.0.join("out")),
    );
    assert_eq!(c.code, 0, "create:\n{c}");
    let pid = std::fs::read_to_string(&pidf).unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mem_line = cg
        .lines()
        .find(|l| l.contains(":memory:") || l.starts_with("0::"))
        .unwrap_or("")
        .to_string();
    let _ = vmm(&st, &["start", "g1"], None);
    let group = mem_line.splitn(3, ':').nth(2).unwrap_or("").to_string();
    let (dir, file) = if mem_line.contains(":memory:") {
        (
            format!("/sys/fs/cgroup/memory{group}"),
            "memory.limit_in_bytes",
        )
    } else {
        (format!("/sys/fs/cgroup{group}"), "memory.max")
    };
    let limit = std::fs::read_to_string(format!("{dir}/{file}")).unwrap_or_default();
    // pause and resume: the freezer.
    let p1 = vmm(&st, &["pause", "g1"], None);
    let paused = status_of(&st, "g1");
    let p2 = vmm(&st, &["pause", "g1"], None);
    let r1 = vmm(&st, &["resume", "g1"], None);
    let resumed = status_of(&st, "g1");
    let r2 = vmm(&st, &["resume", "g1"], None);
    let _ = vmm(&st, &["pause", "g1"], None);
    let d = vmm(&st, &["delete", "--force", "g1"], None);
    let gone = !Path::new(&dir).exists();
    // The parents the test named stay, as under runc: the test removes them.
    let mut leftovers = Vec::new();
    for line in cg.lines() {
        let g = line.splitn(3, ':').nth(2).unwrap_or("");
        if let Some(p) = g.strip_suffix("/c1") {
            for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
                let d = h.path().join(p.trim_start_matches('/'));
                if d.ends_with(&parent) && std::fs::remove_dir(&d).is_err() && d.exists() {
                    leftovers.push(d);
                }
            }
            let d = Path::new("/sys/fs/cgroup").join(p.trim_start_matches('/'));
            let _ = std::fs::remove_dir(&d);
        }
    }
    assert!(
        cg.contains(&format!("{parent}/c1")) && group.ends_with(&format!("{parent}/c1")),
        "the container process is not in the group:\n{cg}"
    );
    assert_eq!(limit.trim(), "201326592", "memory limit in {dir}/{file}");
    assert!(
        p1.code == 0
            && paused == "paused"
            && p2.code == 1
            && r1.code == 0
            && resumed == "running"
            && r2.code == 1,
        "pause/resume: {p1}\n{paused}\n{p2}\n{r1}\n{resumed}\n{r2}"
    );
    assert!(d.code == 0 && gone, "delete did not remove {dir}:\n{d}");
    assert!(leftovers.is_empty(), "left: {leftovers:?}");
}

/// Receives one fd sent with SCM_RIGHTS on `sock`.
fn recv_fd(sock: &std::os::unix::net::UnixStream) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: msg points at iov and cbuf, alive for the call; the cmsg is read inside cbuf
    // after the kernel filled it (CMSG_FIRSTHDR checks msg_controllen).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        if libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) < 0 {
            return None;
        }
        let cm = libc::CMSG_FIRSTHDR(&msg);
        if cm.is_null() || (*cm).cmsg_type != libc::SCM_RIGHTS {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cm).cast::<i32>());
        Some(std::os::fd::OwnedFd::from_raw_fd(fd))
    }
}

/// `process.terminal`: the pty master arrives over `--console-socket` (as runc sends it) and
/// the program's stdio is the slave.
#[test]
fn terminal_over_the_console_socket() {
    if !have_busybox() {
        return;
    }
    let mut failures = Vec::new();
    for p in platforms_under_test() {
        let s = Scratch::new("tty");
        let b = s.0.join("bundle");
        let st = s.0.join("state");
        bundle(
            &b,
            &p,
            "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo on-a-tty; read line; echo got $line",
            "",
        );
        let cfg = std::fs::read_to_string(b.join("config.json"))
            .unwrap()
            .replace("\"terminal\":false", "\"terminal\":true");
        std::fs::write(b.join("config.json"), cfg).unwrap();
        let sock = s.0.join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let got = std::thread::spawn(move || listener.accept().ok().and_then(|(c, _)| recv_fd(&c)));
        let c = vmm(
            &st,
            &[
                "create",
                "--bundle",
                b.to_str().unwrap(),
                "--console-socket",
                sock.to_str().unwrap(),
                "t1",
            ],
            None,
        );
        let Some(master) = got.join().unwrap() else {
            failures.push(format!("[{p}] no pty master over the console socket:\n{c}"));
            continue;
        };
        let start = vmm(&st, &["start", "t1"], None);
        let mut m = std::fs::File::from(master);
        use std::io::{Read, Write};
        let _ = m.write_all(b"hello\n");
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        let deadline = Instant::now() + Duration::from_secs(20);
        // Until the slave's last holder closes it (EIO) or the output is complete.
        while Instant::now() < deadline {
            match m.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&out).contains("got hello") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        if c.code != 0
            || start.code != 0
            || !text.contains("on-a-tty")
            || !text.contains("got hello")
        {
            failures.push(format!("[{p}] terminal: {text:?}\n{c}\n{start}"));
        }
        wait_status(&st, "t1", "stopped");
        let _ = vmm(&st, &["delete", "--force", "t1"], None);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Eight `create`s of one ID at once: exactly one wins, the others say it exists; then
/// `delete --force`s racing `state`s leave nothing behind.
#[test]
fn racing_commands_on_one_id() {
    if !have_busybox() {
        return;
    }
    let platform = platforms_under_test()
        .into_iter()
        .next()
        .unwrap_or_else(|| "auto".into());
    let s = Scratch::new("race");
    let b = s.0.join("bundle");
    let st = s.0.join("state");
    bundle(&b, &platform, "sleep 100", "");
    let bs = b.to_str().unwrap().to_string();
    let outs: Vec<Out> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let (st, bs, log) = (&st, &bs, s.0.join(format!("out{i}")));
                sc.spawn(move || vmm(st, &["create", "--bundle", bs, "same"], Some(&log)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = outs.iter().filter(|o| o.code == 0).count();
    let lost = outs
        .iter()
        .filter(|o| o.code == 1 && o.stderr.contains("already exists"))
        .count();
    assert!(
        won == 1 && lost == 7,
        "racing creates: {won} won, {lost} refused:\n{}",
        outs.iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(status_of(&st, "same"), "created");
    let outs: Vec<Out> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let st = &st;
                let cmd = if i % 2 == 0 { "delete" } else { "state" };
                sc.spawn(move || {
                    let args: &[&str] = if cmd == "delete" {
                        &["delete", "--force", "same"]
                    } else {
                        &["state", "same"]
                    };
                    vmm(st, args, None)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outs {
        assert!(
            o.code == 0 || o.stderr.contains("does not exist"),
            "racing delete/state:\n{o}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(&st)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".auto-platform")
        .collect();
    assert!(left.is_empty(), "left in the state root: {left:?}");
}

/// `features` is JSON; `vmm run PROG` without a bundle is still the plain quick path.
#[test]
fn features_and_the_plain_run_path() {
    let st = Scratch::new("feat");
    let f = vmm(&st.0, &["features"], None);
    assert!(
        f.code == 0
            && f.stdout.contains("\"ociVersionMax\"")
            && f.stdout.contains("dev.vmm.platform"),
        "features:\n{f}"
    );
    let o = Command::new(vmm_bin_or_panic())
        .args(["run", "/bin/echo", "--bundle", "x"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "--bundle x\n",
        "vmm run PROG --bundle must pass --bundle to PROG"
    );
}

/// containerd (`ctr run --runc-binary vmm`) and Docker (`"runtimes": {"vmm": ...}`):
/// `tests/oci/engines` starts its own daemons; skips only if they cannot run here.
#[test]
fn engines_containerd_and_docker() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("oci/engines");
    if !script.exists() {
        // The kvm rig carries the test binaries, not the engines or their script.
        eprintln!(
            "skipping: {} is not here (no containerd or dockerd to drive)",
            script.display()
        );
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: the engine daemons need root");
        return;
    }
    let s = Scratch::new("eng");
    let o = Command::new(&script)
        .arg(vmm_bin_or_panic())
        .arg(s.0.join("e"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{err}");
    match o.status.code() {
        Some(0) => {}
        Some(77) => eprintln!("skipping the engine checks: {}", err.trim()),
        _ => panic!("engine checks failed ({}):\n{err}", o.status),
    }
}
