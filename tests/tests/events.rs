//! Readiness and event descriptors — epoll, eventfd, timerfd, signalfd, and poll/select over
//! them — compared with native runs on every platform under test and every variant; and
//! Python's `selectors` (epoll underneath) as a real program uses them.

use vmm_tests::{compare, for_each_case, python_script_same_as_native};

#[test]
fn events() {
    for_each_case("events", |p, v| compare(p, v, "events", &[]));
}

#[test]
fn python_selectors() {
    python_script_same_as_native("python_selectors", "py_selectors.py", "python selectors");
}
