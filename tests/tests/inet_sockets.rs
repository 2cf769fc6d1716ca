//! The loopback network (`--network none`): TCP and UDP over IPv4, IPv6 and the dual stack,
//! served by the Sentry — a C program with the edge cases (binding rules, refused and
//! non-blocking connects, resets, EPIPE, datagrams, options, readiness, transfers between
//! processes and threads) compared with native runs on every platform and variant; and real
//! programs on it: Python's http.server/urllib/socketserver/asyncio/selectors/multiprocessing,
//! Node's http, Go's net/http, each compared with its native run.

use vmm_tests::{
    assert_same_as_native, compare, for_each_case, python_script_same_as_native, run_command,
    run_vmm,
};

#[test]
fn inet_sockets() {
    for_each_case("inet_sockets", |p, v| compare(p, v, "inet_sockets", &[]));
}

/// Nothing outside the sandbox is reachable, raw, packet and ping sockets stay refused, and
/// its one interface is `lo` to every way of asking (netlink, `SIOCGIF*`, glibc).
#[test]
fn network_none_reaches_nothing_outside() {
    const WANT: &str = "\
tcp connect elsewhere: ENETUNREACH
tcp6 connect elsewhere: ENETUNREACH
udp sendto elsewhere: ENETUNREACH
udp connect elsewhere: ENETUNREACH
raw socket: EPERM
raw6 socket: EPERM
packet socket: EAFNOSUPPORT
ping socket: EACCES
if_nameindex: 1 lo
if_nametoindex lo: 1, eth0: 0, if_indextoname 1: lo
getifaddrs: lo family 17 flags 0x10049 -
getifaddrs: lo family 2 flags 0x10049 127.0.0.1
getifaddrs: lo family 10 flags 0x10049 ::1
SIOCGIFCONF: ok
SIOCGIFCONF: 40 bytes, lo 127.0.0.1
SIOCGIFFLAGS: ok
flags 0x49
SIOCGIFMTU: ok
mtu 65536
SIOCSIFMTU: EPERM
SIOCGIFFLAGS eth0: ENODEV
netlink route: ok
netlink audit: EPROTONOSUPPORT
sethostname: ok
setdomainname: ok
sethostname too long: EINVAL
uname: sandboxed example
";
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    for_each_case("inet_sockets isolated", |p, v| {
        let out = run_vmm(p, v, "inet_sockets", &["isolated"], &[]);
        let now = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        if now != host_name {
            return Err(format!("the host's name changed: {host_name:?} -> {now:?}"));
        }
        if out.code() == 0 && out.stdout_str() == WANT {
            Ok(())
        } else {
            Err(format!("expected:\n{WANT}\n{out}"))
        }
    });
}

#[test]
fn python_inet_sockets() {
    python_script_same_as_native("python_inet_sockets", "py_inet.py", "python inet sockets");
}

#[test]
fn node_http() {
    let node = std::path::Path::new("/usr/bin/node");
    let script: std::path::PathBuf = [env!("CARGO_MANIFEST_DIR"), "progs", "node_http.js"]
        .iter()
        .collect();
    if !node.is_file() || !script.is_file() {
        eprintln!(
            "skipping node_http: no /usr/bin/node here (apt-get install nodejs), or no script"
        );
        return;
    }
    let script = script.to_str().expect("UTF-8 path");
    let native = run_command(node, &[script]);
    assert!(native.status.success(), "native run failed:\n{native}");
    assert_same_as_native("node http", &native, node, &[script]);
}

#[test]
fn go_http() {
    let prog = vmm_tests::progs_dir().join("go").join("go_http");
    if !prog.is_file() {
        eprintln!(
            "skipping go_http: {} was not built (no Go toolchain: apt-get install golang-go)",
            prog.display()
        );
        return;
    }
    let native = run_command(&prog, &[] as &[&str]);
    assert!(native.status.success(), "native run failed:\n{native}");
    assert_same_as_native("go_http", &native, &prog, &[]);
}
