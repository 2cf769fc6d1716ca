//! System V IPC (`progs/sysv_ipc.c`): semaphores (`semget` by key and IPC_PRIVATE, `semop`
//! applied atomically, IPC_NOWAIT, waits for an increase and for zero woken by another process,
//! GETNCNT/GETZCNT, SEM_UNDO at exit, `semtimedop` timeouts, EINTR, EIDRM for waiters, every
//! `semctl` command), message queues (`msgrcv` type selection, MSG_EXCEPT, MSG_NOERROR, E2BIG,
//! senders waiting for room, receivers waiting for a type, EIDRM), shared memory (`shmat` at
//! NULL or a given address, SHM_RND, SHM_RDONLY, attach counts across fork and exec, removal
//! while attached, destruction with the last detach), and threads of one process waiting.
//! Each case runs alone, natively and on every platform under test and every variant; the
//! output (comparisons only, no ids or times) must be the same, and natively the expected.

use vmm_tests::{case_as_expected, lines_of};

/// What each case prints natively (Linux 6.x), by the prefixes of its lines.
const EXPECTED: &str = "\
sem: nsems 0 private EINVAL
sem: nsems -1 EINVAL
sem: nsems 32001 EINVAL
sem: absent key ENOENT
sem: create by key ok
sem: excl EEXIST
sem: more sems than the set EINVAL
sem: same set by key 1, with nsems 0 1
sem: rmid keyed ok, gone ENOENT
sem: private ok
sem: stat ok nsems 3 mode 600 key 0 owner is me 1
sem: otime before any semop 0
sem: initial values 0 0 0
sem: setval ok getval 5
sem: setval 32768 ERANGE, -1 ERANGE
sem: getval semnum 3 EINVAL, -1 EINVAL
sem: setall ok
sem: getall ok 1 2 3
sem: getpid is me 1
sem: ncnt 0 zcnt 0
sem: two ops ok -> 0 3
sem: otime set 1
sem: nowait would block EAGAIN, nothing applied 0
sem: same sem in order ok -> 2
sem: wait for zero on 0 ok
sem: wait for zero nowait EAGAIN
sem: overflow ERANGE
sem: 501 ops E2BIG, 0 ops EINVAL
sem: sem_num 3 EFBIG
sem: bad sops EFAULT
sem: semid -1 EINVAL
sem: bad cmd EINVAL
sem: stat bad pointer EFAULT, getall bad pointer EFAULT, setall bad pointer EFAULT
sem: setall 40000 ERANGE
sem: ipc_set ok mode 640
sem: ipc_info ok semmsl>0 1, sem_info ok sets>=1 1
sem: write to 0400 set refused unless root 1
sem: rmid ok, getval after EINVAL, semop after EINVAL, rmid again EINVAL
block: child waits: ncnt 1 zcnt 0
block: post ok
block: child woke 0, value 0, pid is child 1, ncnt 0
block: zero waiter zcnt 1
block: still one, zcnt 1
block: zero waiter woke 0
block: atomic: sem0 1 ncnt0 0 ncnt1 1
block: setval woke it 0, values 0 0
block: two waiters ncnt 2
block: one woke, ncnt 1 value 0
block: both done 0 0
undo: after exit 10, pid is child 1
undo: before exit 32767
undo: clamped 32767
undo: setval cleared it 7
undo: lock taken 0
undo: holder killed 1009, waiter got it 0, value 0
undo: no SEM_UNDO kept 4
timeout: 50ms EAGAIN
timeout: zero EAGAIN
timeout: nsec 1e9 EINVAL, negative EINVAL
timeout: bad pointer EFAULT
timeout: can go ok value 0
timeout: ncnt after 0
timeout: woken before its timeout 0
intr: SA_RESTART 0: EINTR handler ran 1 ncnt 0
intr: SA_RESTART 1: EINTR handler ran 1 ncnt 0
idrm: rmid ok
idrm: waiter got EIDRM 1, timed waiter got EIDRM 1
idrm: fresh call EINVAL
msg: absent key ENOENT
msg: create by key ok, again same 1, excl EEXIST
msg: private ok
msg: stat ok qnum 0 cbytes 0 qbytes 16384 key 0
msg: send 3 ok 1 ok 2 ok 1 ok
msg: qnum 4 cbytes 18 lspid is me 1 lrpid 0
msg: type 2 -> 3 2 two
msg: type -2 -> 5 1 one-a
msg: except 1 -> 5 3 three
msg: type 0 -> 5 1 one-b
msg: empty nowait ENOMSG, no type 7 nowait ENOMSG
msg: lrpid is me 1 qnum 0
msg: too long E2BIG, still queued 1
msg: noerror -> 5 hello
msg: empty message ok -> 0
msg: mtype 0 EINVAL, -1 EINVAL
msg: 8193 bytes EINVAL, 8192 bytes ok
msg: bad msgp send EFAULT
msg: bad msgp recv EFAULT, message gone 1
msg: msqid -1 send EINVAL recv EINVAL
msg: negative size recv EINVAL
msg: stat bad pointer EFAULT, bad cmd EINVAL
msg: ipc_set ok qbytes 100 mode 640
msg: 60 bytes ok, 60 more nowait EAGAIN
msg: ipc_info ok msgmax>0 1, msg_info ok
msg: rmid ok, send after EINVAL, rmid again EINVAL
msgblock: receiver got type 5 0
msgblock: left qnum 1, lrpid is child 1
msgblock: full, nowait EAGAIN
msgblock: took 0123456789, sender done 0
msgblock: then 5 abcde
msgblock: ping-pong 1 child 0
msgblock: waiter got EIDRM 1
shm: size 0 EINVAL
shm: absent key ENOENT
shm: by key ok, same 1, bigger EINVAL, excl EEXIST
shm: stat ok segsz 10000 nattch 0 cpid is me 1 lpid 0 mode 600 atime 0
shm: attach ok, page aligned 1, reads zero 1
shm: nattch 1 lpid is me 1 atime set 1
shm: read-only attach sees hello, nattch 2, distinct 1
shm: write to read-only attach: signal 11
shm: detach read-only ok nattch 1
shm: detach unaligned EINVAL, not attached EINVAL, again EINVAL
shm: at given address 1 sees hello
shm: over a mapping EINVAL
shm: unaligned EINVAL
shm: SHM_RND rounds down 1
shm: bad id EINVAL, -1 EINVAL
shm: stat bad pointer EFAULT, bad cmd EINVAL
shm: ipc_set ok mode 640
shm: ipc_info ok shmmin 1, shm_info ok used>=1 1
shm: rmid attached ok dest 1 key 0 nattch 1 tail z
shm: last detach ok, then stat EINVAL
shmfork: parent sees child, nattch with child 2
shmfork: child saw the writes and nattch 2
shmfork: nattch after child detached and exited 1
shmfork: nattch seen after exec 1
shmfork: parent detached, nattch 1
shmfork: child read it 0
shmfork: gone after child exit EINVAL
shmfork: counted under a semaphore 600
threads: waiting 3
threads: all woke 1 value 0
threads: receivers got their types 1
";

/// Case `name`, against the lines of [`EXPECTED`] it prints (each starts with its name).
fn case(name: &str) {
    case_as_expected("sysv_ipc", name, &lines_of(EXPECTED, &[name]));
}

#[test]
fn sem() {
    case("sem");
}

#[test]
fn block() {
    case("block");
}

#[test]
fn undo() {
    case("undo");
}

#[test]
fn timeout() {
    case("timeout");
}

#[test]
fn intr() {
    case("intr");
}

#[test]
fn idrm() {
    case("idrm");
}

#[test]
fn msg() {
    case("msg");
}

#[test]
fn msgblock() {
    case("msgblock");
}

#[test]
fn shm() {
    case("shm");
}

#[test]
fn shmfork() {
    case("shmfork");
}

#[test]
fn threads() {
    case("threads");
}
