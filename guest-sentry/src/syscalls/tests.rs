//! Unit tests of the syscall layer on the fake host and platform ([`crate::testing`]): no stub
//! process, no VM. Behaviour against native Linux is what `tests/` checks; these pin down the
//! table, `--strace` decoding and argument checking.

use linux_raw_sys::general as g;
use std::string::String;
use std::vec::Vec;

use crate::kernel::Config;
use crate::testing::{FakeHost, Harness};

fn harness(strace: bool) -> Harness {
    let host = FakeHost::with_files(&[("/etc/hosts", b"127.0.0.1 localhost\n")]);
    Harness::new(
        host,
        Config {
            strace,
            ..Default::default()
        },
    )
}

const EFAULT: i64 = -(linux_raw_sys::errno::EFAULT as i64);

#[test]
fn identity_calls() {
    let mut h = harness(false);
    assert_eq!(h.call(g::__NR_getpid, &[]), 1);
    assert_eq!(h.call(g::__NR_gettid, &[]), 1);
    assert_eq!(h.call(g::__NR_getppid, &[]), 0);
    assert_eq!(h.call(g::__NR_umask, &[0o077]), 0o022);
    assert_eq!(h.call(g::__NR_umask, &[0o022]), 0o077);
}

#[test]
fn open_read_close_a_host_file() {
    let mut h = harness(false);
    let path = h.put(b"/etc/hosts\0");
    let fd = h.call(
        g::__NR_openat,
        &[
            g::AT_FDCWD as u64,
            path,
            (g::O_RDONLY | g::O_CLOEXEC) as u64,
        ],
    );
    assert_eq!(fd, 3);
    let buf = h.put(&[0; 64]);
    assert_eq!(h.call(g::__NR_read, &[3, buf, 64]), 20);
    assert_eq!(h.get(buf, 9), b"127.0.0.1");
    assert_eq!(h.call(g::__NR_read, &[3, buf, 64]), 0, "end of file");
    assert_eq!(h.call(g::__NR_close, &[3]), 0);
    assert_eq!(
        h.call(g::__NR_close, &[3]),
        -(linux_raw_sys::errno::EBADF as i64)
    );
    let missing = h.put(b"/etc/nope\0");
    assert_eq!(
        h.call(g::__NR_open, &[missing, 0]),
        -(linux_raw_sys::errno::ENOENT as i64)
    );
}

#[test]
fn bad_pointers_are_efault() {
    let mut h = harness(false);
    // Nothing is mapped at 0x1000 or in the kernel half.
    assert_eq!(
        h.call(g::__NR_openat, &[g::AT_FDCWD as u64, 0x1000, 0]),
        EFAULT
    );
    assert_eq!(
        h.call(g::__NR_write, &[1, 0xffff_8000_0000_0000, 4]),
        EFAULT
    );
    assert_eq!(h.call(g::__NR_uname, &[0x1000]), EFAULT);
    assert_eq!(h.call(g::__NR_pipe2, &[0x1000, 0]), EFAULT);
    assert_eq!(h.call(g::__NR_rt_sigaction, &[2, 0x1000, 0, 8]), EFAULT);
}

#[test]
fn pipe_round_trip() {
    let mut h = harness(false);
    let fds = h.put(&[0; 8]);
    assert_eq!(h.call(g::__NR_pipe2, &[fds, 0]), 0);
    let fds = h.get(fds, 8);
    let (r, w) = (
        u32::from_le_bytes(fds[..4].try_into().unwrap()) as u64,
        u32::from_le_bytes(fds[4..].try_into().unwrap()) as u64,
    );
    assert_eq!((r, w), (3, 4));
    let msg = h.put(b"hello");
    assert_eq!(h.call(g::__NR_write, &[w, msg, 5]), 5);
    let out = h.put(&[0; 8]);
    assert_eq!(h.call(g::__NR_read, &[r, out, 8]), 5);
    assert_eq!(h.get(out, 5), b"hello");
}

#[test]
fn unknown_syscalls_are_enosys_and_logged_once() {
    let mut h = harness(false);
    assert_eq!(
        h.call(999, &[1, 2, 3]),
        -(linux_raw_sys::errno::ENOSYS as i64)
    );
    assert_eq!(
        h.call(999, &[1, 2, 3]),
        -(linux_raw_sys::errno::ENOSYS as i64)
    );
    let log = h.take_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].contains("unsupported syscall 999"), "{log:?}");
}

#[test]
fn strace_lines_are_decoded() {
    let mut h = harness(true);
    let path = h.put(b"/etc/hosts\0");
    h.call(
        g::__NR_openat,
        &[
            g::AT_FDCWD as u64,
            path,
            (g::O_RDONLY | g::O_CLOEXEC) as u64,
            0,
        ],
    );
    let buf = h.put(&[0; 64]);
    h.call(g::__NR_read, &[3, buf, 64]);
    // struct sigaction: handler, flags, restorer, mask.
    let act: Vec<u8> = [0x401136u64, g::SA_RESTART as u64, 0, 1 << (g::SIGTERM - 1)]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let act = h.put(&act);
    h.call(g::__NR_rt_sigaction, &[g::SIGINT as u64, act, 0, 8]);
    let missing = h.put(b"/nodir/x\0");
    h.call(
        g::__NR_openat,
        &[
            g::AT_FDCWD as u64,
            missing,
            (g::O_WRONLY | g::O_CREAT) as u64,
            0o640,
        ],
    );
    h.call(0x1234, &[1]);
    let log: Vec<String> = h.take_log();
    let want = [
        "[1] openat(AT_FDCWD, \"/etc/hosts\", O_RDONLY|O_CLOEXEC) = 3",
        "[1] read(3, \"127.0.0.1 localhost\\n\", 64) = 20",
        "[1] rt_sigaction(SIGINT, {sa_handler=0x401136, sa_mask=[TERM], sa_flags=SA_RESTART}, NULL, 8) = 0",
        "[1] openat(AT_FDCWD, \"/nodir/x\", O_WRONLY|O_CREAT, 0640) = -1 ENOENT (No such file or directory)",
        "[1] syscall_4660(0x1, 0x0, 0x0, 0x0, 0x0, 0x0) = -1 ENOSYS (Function not implemented)",
    ];
    for w in want {
        assert!(log.iter().any(|l| l == w), "no line {w:?} in {log:#?}");
    }
}

#[test]
fn restart_rules_come_from_the_table() {
    let layer = super::layer::<crate::testing::FakePlatform>();
    assert!((layer.restartable)(g::__NR_read as u64));
    assert!((layer.restartable)(g::__NR_wait4 as u64));
    for nr in [
        g::__NR_nanosleep,
        g::__NR_clock_nanosleep,
        g::__NR_poll,
        g::__NR_ppoll,
        g::__NR_select,
        g::__NR_pselect6,
        g::__NR_pause,
        g::__NR_rt_sigsuspend,
    ] {
        assert!(!(layer.restartable)(nr as u64), "syscall {nr} restarted");
    }
}

fn errno(e: u32) -> i64 {
    -(e as i64)
}

/// An `epoll_event` as the app lays it out (packed: 12 bytes).
fn epoll_event(events: u32, data: u64) -> Vec<u8> {
    let mut v = events.to_le_bytes().to_vec();
    v.extend_from_slice(&data.to_le_bytes());
    v
}

#[test]
fn epoll_over_an_eventfd_level_and_edge_triggered() {
    use linux_raw_sys::errno::{EEXIST, EINVAL, ENOENT, EPERM};
    let mut h = harness(false);
    let ep = h.call(g::__NR_epoll_create1, &[0]) as u64;
    let efd = h.call(g::__NR_eventfd2, &[0, g::EFD_NONBLOCK as u64]) as u64;
    assert_eq!((ep, efd), (3, 4));
    let ev = h.put(&epoll_event(g::EPOLLIN, 0x1122_3344_5566_7788));
    let add = g::EPOLL_CTL_ADD as u64;
    assert_eq!(h.call(g::__NR_epoll_ctl, &[ep, add, efd, ev]), 0);
    assert_eq!(
        h.call(g::__NR_epoll_ctl, &[ep, add, efd, ev]),
        errno(EEXIST)
    );
    assert_eq!(h.call(g::__NR_epoll_ctl, &[ep, add, ep, ev]), errno(EINVAL));
    assert_eq!(
        h.call(g::__NR_epoll_ctl, &[ep, g::EPOLL_CTL_DEL as u64, 1, 0]),
        errno(ENOENT)
    );
    let out = h.put(&[0; 24]);
    assert_eq!(h.call(g::__NR_epoll_wait, &[ep, out, 2, 0]), 0);
    let one = h.put(&1u64.to_le_bytes());
    assert_eq!(h.call(g::__NR_write, &[efd, one, 8]), 8);
    // Level-triggered: reported while readable.
    for _ in 0..2 {
        assert_eq!(h.call(g::__NR_epoll_wait, &[ep, out, 2, 0]), 1);
        assert_eq!(
            h.get(out, 12),
            epoll_event(g::EPOLLIN, 0x1122_3344_5566_7788)
        );
    }
    // Edge-triggered: once per write.
    let et = h.put(&epoll_event(g::EPOLLIN | g::EPOLLET, 5));
    assert_eq!(
        h.call(g::__NR_epoll_ctl, &[ep, g::EPOLL_CTL_MOD as u64, efd, et]),
        0
    );
    assert_eq!(h.call(g::__NR_epoll_wait, &[ep, out, 2, 0]), 1);
    assert_eq!(h.call(g::__NR_epoll_wait, &[ep, out, 2, 0]), 0);
    assert_eq!(h.call(g::__NR_write, &[efd, one, 8]), 8);
    assert_eq!(h.call(g::__NR_epoll_wait, &[ep, out, 2, 0]), 1);
    let val = h.put(&[0; 8]);
    assert_eq!(h.call(g::__NR_read, &[efd, val, 8]), 8);
    assert_eq!(h.get(val, 8), 2u64.to_le_bytes());
    assert_eq!(
        h.call(g::__NR_read, &[efd, val, 8]),
        errno(linux_raw_sys::errno::EAGAIN)
    );
    // Regular files cannot be watched; closing a watched fd removes its watch.
    let path = h.put(b"/etc/hosts\0");
    let f = h.call(g::__NR_open, &[path, 0]) as u64;
    assert_eq!(h.call(g::__NR_epoll_ctl, &[ep, add, f, ev]), errno(EPERM));
    assert_eq!(h.call(g::__NR_write, &[efd, one, 8]), 8);
    assert_eq!(h.call(g::__NR_close, &[efd]), 0);
    assert_eq!(h.call(g::__NR_epoll_wait, &[ep, out, 2, 0]), 0);
    // A blocking wait with nothing ready asks the scheduler to block the task.
    assert_eq!(h.call(g::__NR_epoll_wait, &[ep, out, 2, u64::MAX]), 0);
    assert!(matches!(
        h.task.request.take(),
        Some(crate::sched::Request::Block)
    ));
    assert_eq!(
        h.call(g::__NR_epoll_wait, &[ep, out, 0, 0]),
        errno(EINVAL),
        "maxevents 0"
    );
}

#[test]
fn epoll_loops_are_refused() {
    let mut h = harness(false);
    let a = h.call(g::__NR_epoll_create1, &[0]) as u64;
    let b = h.call(g::__NR_epoll_create1, &[0]) as u64;
    let ev = h.put(&epoll_event(g::EPOLLIN, 0));
    let add = g::EPOLL_CTL_ADD as u64;
    assert_eq!(h.call(g::__NR_epoll_ctl, &[a, add, b, ev]), 0);
    assert_eq!(
        h.call(g::__NR_epoll_ctl, &[b, add, a, ev]),
        errno(linux_raw_sys::errno::ELOOP)
    );
}

#[test]
fn timerfd_counts_expirations() {
    let mut h = harness(false);
    let t = h.call(
        g::__NR_timerfd_create,
        &[1, g::TFD_NONBLOCK as u64], // CLOCK_MONOTONIC
    ) as u64;
    let val = h.put(&[0; 8]);
    assert_eq!(
        h.call(g::__NR_read, &[t, val, 8]),
        errno(linux_raw_sys::errno::EAGAIN)
    );
    // 1 ms, then every 1 ms.
    let spec: Vec<u8> = [0i64, 1_000_000, 0, 1_000_000]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let spec = h.put(&spec);
    assert_eq!(h.call(g::__NR_timerfd_settime, &[t, 0, spec, 0]), 0);
    crate::host::Host::sleep(h.host(), 3_500_000);
    assert_eq!(h.call(g::__NR_read, &[t, val, 8]), 8);
    let n = u64::from_le_bytes(h.get(val, 8).try_into().unwrap());
    assert!((3..=4).contains(&n), "{n} expirations");
    let cur = h.put(&[0; 32]);
    assert_eq!(h.call(g::__NR_timerfd_gettime, &[t, cur]), 0);
    assert_eq!(h.get(cur + 8, 8), 1_000_000i64.to_le_bytes(), "interval");
    let bad: Vec<u8> = [0i64, 0, 0, 1_000_000_000]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let bad = h.put(&bad);
    assert_eq!(
        h.call(g::__NR_timerfd_settime, &[t, 0, bad, 0]),
        errno(linux_raw_sys::errno::EINVAL)
    );
}

#[test]
fn signalfd_takes_blocked_pending_signals() {
    let mut h = harness(false);
    let usr1 = crate::signal::bit(g::SIGUSR1 as i32);
    let chld = crate::signal::bit(g::SIGCHLD as i32);
    h.task.signals.blocked = usr1 | chld;
    let mask = h.put(&(usr1 | chld).to_le_bytes());
    let s = h.call(
        g::__NR_signalfd4,
        &[u64::MAX, mask, 8, g::O_NONBLOCK as u64],
    ) as u64;
    let buf = h.put(&[0; 256]);
    assert_eq!(
        h.call(g::__NR_read, &[s, buf, 256]),
        errno(linux_raw_sys::errno::EAGAIN)
    );
    for sig in [g::SIGUSR1, g::SIGCHLD] {
        crate::signal::post(
            &mut h.task,
            crate::signal::SigInfo {
                signo: sig as i32,
                pid: 7,
                ..Default::default()
            },
        );
    }
    // SIGCHLD is ignored by default, but a blocked signal stays pending.
    assert_eq!(crate::signal::pending_mask(&h.task), usr1 | chld);
    assert_eq!(h.call(g::__NR_read, &[s, buf, 256]), 256);
    assert_eq!(h.get(buf, 4), (g::SIGUSR1).to_le_bytes());
    assert_eq!(h.get(buf + 12, 4), 7u32.to_le_bytes(), "ssi_pid");
    assert_eq!(h.get(buf + 128, 4), (g::SIGCHLD).to_le_bytes());
    assert_eq!(crate::signal::pending_mask(&h.task), 0);
    assert_eq!(
        h.call(g::__NR_signalfd4, &[u64::MAX, mask, 4, 0]),
        errno(linux_raw_sys::errno::EINVAL)
    );
}

#[test]
fn event_waits_are_not_restarted() {
    let layer = super::layer::<crate::testing::FakePlatform>();
    for nr in [
        g::__NR_epoll_wait,
        g::__NR_epoll_pwait,
        g::__NR_epoll_pwait2,
    ] {
        assert!(!(layer.restartable)(nr as u64), "syscall {nr} restarted");
    }
    assert!((layer.restartable)(g::__NR_epoll_ctl as u64));
}

#[test]
fn pidfd_open_asks_the_scheduler_about_other_processes() {
    let mut h = harness(false);
    // The caller itself needs no view.
    let own = h.call(g::__NR_pidfd_open, &[1, 0]);
    assert_eq!(own, 3);
    h.call(g::__NR_pidfd_open, &[5, 0]);
    assert!(matches!(
        h.task.request.take(),
        Some(crate::sched::Request::ProcView)
    ));
    h.kernel.proc_view = Some(crate::fsimpl::procfs::ProcView {
        for_pid: 1,
        procs: Default::default(),
        tids: Default::default(),
    });
    assert_eq!(
        h.call(g::__NR_pidfd_open, &[5, 0]),
        errno(linux_raw_sys::errno::ESRCH)
    );
    assert!(h.kernel.proc_view.is_none(), "the view is used once");
}

#[test]
fn posix_timers_create_set_get_and_overrun() {
    let mut h = harness(true);
    let einval = errno(linux_raw_sys::errno::EINVAL);
    let idp = h.put(&[0xff; 4]);
    assert_eq!(h.call(g::__NR_timer_create, &[1, 0, idp]), 0);
    assert_eq!(h.get(idp, 4), 0i32.to_le_bytes(), "ids start at 0");
    // struct sigevent: value, signo, notify, tid.
    let sigevent = |value: u64, signo: i32, notify: i32, tid: i32| -> Vec<u8> {
        let mut b = value.to_le_bytes().to_vec();
        for w in [signo, notify, tid] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.resize(64, 0);
        b
    };
    let bad = h.put(&sigevent(0, 10, 99, 0));
    assert_eq!(h.call(g::__NR_timer_create, &[1, bad, idp]), einval);
    assert_eq!(h.call(g::__NR_timer_create, &[12345, 0, idp]), einval);
    assert_eq!(
        h.call(g::__NR_timer_create, &[8, 0, idp]),
        errno(linux_raw_sys::errno::EPERM),
        "alarm clocks need CAP_WAKE_ALARM"
    );
    // Another thread: the scheduler's view says whether it is one of the process's.
    let other = h.put(&sigevent(5, 34, 4, 5));
    h.call(g::__NR_timer_create, &[1, other, idp]);
    assert!(matches!(
        h.task.request.take(),
        Some(crate::sched::Request::ProcView)
    ));
    let view = |tids: &[u32]| crate::fsimpl::procfs::ProcView {
        for_pid: 1,
        procs: Default::default(),
        tids: [(1, tids.to_vec())].into_iter().collect(),
    };
    h.kernel.proc_view = Some(view(&[1]));
    assert_eq!(h.call(g::__NR_timer_create, &[1, other, idp]), einval);
    h.kernel.proc_view = Some(view(&[1, 5]));
    assert_eq!(h.call(g::__NR_timer_create, &[1, other, idp]), 0);
    assert_eq!(h.get(idp, 4), 1i32.to_le_bytes());
    // Set 1 s reloading every 0.5 s; read back (the fake clock moves a microsecond a look).
    let spec = |value: u64, interval: u64| -> Vec<u8> {
        [
            interval / 1_000_000_000,
            interval % 1_000_000_000,
            value / 1_000_000_000,
            value % 1_000_000_000,
        ]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
    };
    let new = h.put(&spec(1_000_000_000, 500_000_000));
    let cur = h.put(&[0; 32]);
    assert_eq!(h.call(g::__NR_timer_settime, &[0, 0, new, 0]), 0);
    assert_eq!(h.call(g::__NR_timer_gettime, &[0, cur]), 0);
    let words: Vec<u64> = h
        .get(cur, 32)
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(words[0..2], [0, 500_000_000], "interval");
    let value = words[2] * 1_000_000_000 + words[3];
    assert!((999_000_000..1_000_000_000).contains(&value), "{value}");
    let next = h.task.tg.get().timers.earliest().expect("armed");
    // Expired twice more while its signal is still pending (blocked): one signal, overruns.
    h.task.signals.blocked = u64::MAX;
    let due = h.task.tg.lock().timers.expire(next + 500_000_000);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].count, 2);
    let info = crate::signal::SigInfo {
        signo: 14,
        code: crate::signal::SI_TIMER,
        timerid: 0,
        overrun: 1,
        value: 0,
        ..Default::default()
    };
    crate::signal::post(&mut h.task, info);
    assert!(crate::signal::timer_overrun(&mut h.task, false, 14, 0, 3));
    assert!(
        !crate::signal::timer_overrun(&mut h.task, false, 14, 1, 1),
        "not timer 1's"
    );
    assert_eq!(
        h.call(g::__NR_timer_getoverrun, &[0]),
        0,
        "nothing taken yet"
    );
    let taken = crate::signal::take_pending(&mut h.task, 14);
    assert_eq!((taken.timerid, taken.overrun), (0, 4));
    assert_eq!(h.call(g::__NR_timer_getoverrun, &[0]), 4);
    assert!(
        !crate::signal::timer_overrun(&mut h.task, false, 14, 0, 1),
        "taken"
    );
    assert_eq!(h.call(g::__NR_timer_delete, &[0]), 0);
    assert_eq!(h.call(g::__NR_timer_delete, &[0]), einval);
    assert_eq!(h.call(g::__NR_timer_gettime, &[7, cur]), einval);
    let log = h.take_log();
    for w in [
        "[1] timer_settime(0, 0, ",
        "[1] timer_getoverrun(0) = 4",
        "[1] timer_delete(0) = -1 EINVAL (Invalid argument)",
        "[1] timer_create(CLOCK_REALTIME_ALARM, NULL, ",
    ] {
        assert!(
            log.iter().any(|l| l.starts_with(w)),
            "no line {w:?} in {log:#?}"
        );
    }
}
