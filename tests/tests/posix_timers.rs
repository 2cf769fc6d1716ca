//! POSIX per-process timers (`progs/posix_timers.c`): `timer_create` with SIGEV_SIGNAL (and the
//! default of no sigevent), SIGEV_NONE, SIGEV_THREAD_ID, and the C library's SIGEV_THREAD;
//! `timer_settime` (relative, TIMER_ABSTIME, reload, old value), `timer_gettime`,
//! `timer_getoverrun` (overruns while the signal stays pending), `timer_delete`; the siginfo
//! a handler, `sigwaitinfo` and a signalfd see (SI_TIMER, timer id, overrun, value); timers
//! across threads, not inherited by fork, gone after exec; a spinning app interrupted in time; the EINVAL/EFAULT/EAGAIN cases.
//! Each case runs alone, natively and on every platform under test and every variant; the
//! output (no times in it, only bounds checked) must be the same, and natively the expected.

use vmm_tests::{case_as_expected, lines_of};

/// What each case prints natively (Linux 6.x), by the prefixes of its lines.
const EXPECTED: &str = "\
default: create ok, first id 0
default: settime ok
default: signo 14 code -2 timerid ok 1 value is id 1 overrun 0
default: one-shot disarmed after firing 1
default: getoverrun 0
default: delete ok, again EINVAL
periodic: create ok
periodic: fired at least 5 times, value 1234 code -2 timerid ok 1
periodic: remaining within interval 1, interval 5ms 1
periodic: disarm ok
periodic: old value within interval 1, old interval 5ms 1
periodic: disarmed reads 0/0 1
periodic: no signal after delete 1
overrun: pending while blocked 1
overrun: took 1 code -2 value 77 overrun >= 10 1
overrun: getoverrun is the signal's 1
overrun: one-shot overrun 0 getoverrun 0
overrun: signalfd read 1 code -2 tid ok 1 int 77 overrun 0
gettime: relative 2s remaining in (1s,2s] 1 interval 0 1
gettime: old value in (1s,2s] 1
gettime: abstime settime ok
gettime: abstime remaining in (0.5s,1s] 1
gettime: past abstime fired 1 value 5
gettime: SIGEV_NONE create ok
gettime: SIGEV_NONE remaining within interval 1 interval 10ms 1
gettime: SIGEV_NONE one-shot expired reads 0 1
gettime: process cputime create ok
gettime: thread cputime create ok
gettime: boottime create ok
errors: bad clock EINVAL
errors: monotonic raw EOPNOTSUPP
errors: alarm clock refused or served 1
errors: bad sigev_notify EINVAL
errors: SIGEV_THREAD_ID with SIGEV_NONE EINVAL
errors: SIGEV_THREAD_ID with SIGEV_THREAD EINVAL
errors: SIGEV_THREAD_ID signal 0 EINVAL
errors: signal 0 EINVAL
errors: signal 65 EINVAL
errors: bad sevp EFAULT
errors: thread of another process EINVAL
errors: own thread ok
errors: settime NULL EINVAL
errors: settime nsec 1e9 EINVAL
errors: settime negative interval EINVAL
errors: settime bad pointer EFAULT
errors: bad id settime EINVAL
errors: bad id gettime EINVAL
errors: bad id getoverrun EINVAL
errors: bad id delete EINVAL
errors: negative id EINVAL
errors: deleted id EINVAL
errors: limit reached before 64 timers 1 (EAGAIN)
fork: child gettime EINVAL
fork: parent still has it ok
fork: unhandled SIGALRM killed the child 1
exec: timer gone after exec EINVAL
threads: each thread took its own timer's signals 1, none went astray 1
threads: timer for another thread ok
threads: taken by that thread 1
spin: a spinning app took the timer's signals 1
sigev_thread: create ok
sigev_thread: at least 3 callbacks 1 value 42
sigev_thread: interval 3ms 1
sigev_thread: delete ok
";

/// Case `name`, against the lines of [`EXPECTED`] it prints.
fn case(name: &str) {
    let prefixes: &[&str] = match name {
        "fork_exec" => &["fork", "exec"],
        other => &[other],
    };
    case_as_expected("posix_timers", name, &lines_of(EXPECTED, prefixes));
}

#[test]
fn default_sigevent() {
    case("default");
}

#[test]
fn periodic() {
    case("periodic");
}

#[test]
fn overrun() {
    case("overrun");
}

#[test]
fn gettime() {
    case("gettime");
}

#[test]
fn errors() {
    case("errors");
}

#[test]
fn fork_exec() {
    case("fork_exec");
}

#[test]
fn threads() {
    case("threads");
}

#[test]
fn spin() {
    case("spin");
}

#[test]
fn sigev_thread() {
    case("sigev_thread");
}
