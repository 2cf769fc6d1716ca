//! Unix domain sockets served by the Sentry — socketpair, stream/dgram/seqpacket, abstract
//! and path names, fd passing between processes and threads, credentials, shutdown, EPIPE,
//! readiness, buffer limits — compared with native runs on every platform under test and
//! every variant; and Python (socketpair, multiprocessing Pipe and Listener/Client, asyncio)
//! as a real program uses them.

use vmm_tests::{compare, for_each_case, python_script_same_as_native};

#[test]
fn unix_sockets() {
    for_each_case("unix_sockets", |p, v| compare(p, v, "unix_sockets", &[]));
}

#[test]
fn python_unix_sockets() {
    python_script_same_as_native("python_unix_sockets", "py_unix.py", "python unix sockets");
}
