/* sysv_ipc: System V semaphores, message queues and shared memory: creation by key and
 * IPC_PRIVATE, the ctl commands, blocking operations woken by another process (semop,
 * msgsnd on a full queue, msgrcv), SEM_UNDO at exit, timeouts, EINTR, EIDRM for waiters when
 * the object goes, msgrcv's type selection, shared memory across fork with attach counts, and
 * the EINVAL/EFAULT/E2BIG/EFBIG/ERANGE cases. Prints nothing that depends on timing, ids, pids
 * or the user running it: only comparisons. One case per run when given its name. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
    struct seminfo *info;
};


static void *const BAD = (void *)8;

static int ctl(int id, int num, int cmd, long arg) {
    return syscall(SYS_semctl, id, num, cmd, arg);
}
static int getval(int id, int num) { return ctl(id, num, GETVAL, 0); }
static int op1(int id, unsigned short num, short op, short flg) {
    struct sembuf b = {num, op, flg};
    return semop(id, &b, 1);
}
static long timedop(int id, struct sembuf *ops, size_t n, const struct timespec *ts) {
    return syscall(SYS_semtimedop, id, ops, n, ts);
}
static int key_for(int n) { return 0x51c00000 | ((getpid() & 0xffff) << 4) | n; }

/* Waits (bounded by the watchdog) until semaphore `num` of `id` has `want` waiters for an
 * increase (`cmd` GETNCNT) or for zero (GETZCNT): the other process is blocked in semop. */
static void await_count(int id, int num, int cmd, int want) {
    while (ctl(id, num, cmd, 0) != want)
        usleep(1000);
}

static int child_status(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    if (WIFSIGNALED(st))
        return 1000 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

static void sem_basic(void) {
    printf("sem: nsems 0 private %s\n", err(semget(IPC_PRIVATE, 0, 0600)));
    printf("sem: nsems -1 %s\n", err(semget(IPC_PRIVATE, -1, 0600)));
    printf("sem: nsems 32001 %s\n", err(semget(IPC_PRIVATE, 32001, 0600)));
    int key = key_for(1);
    printf("sem: absent key %s\n", err(semget(key, 2, 0600)));
    int k1 = semget(key, 2, IPC_CREAT | 0600);
    printf("sem: create by key %s\n", err(k1));
    printf("sem: excl %s\n", err(semget(key, 2, IPC_CREAT | IPC_EXCL | 0600)));
    printf("sem: more sems than the set %s\n", err(semget(key, 3, 0600)));
    int s1 = semget(key, 1, 0) == k1;
    int s0 = semget(key, 0, 0) == k1;
    printf("sem: same set by key %d, with nsems 0 %d\n", s1, s0);
    printf("sem: rmid keyed %s", err(ctl(k1, 0, IPC_RMID, 0)));
    printf(", gone %s\n", err(semget(key, 2, 0600)));

    int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    printf("sem: private %s\n", err(id));
    struct semid_ds ds;
    union semun u = {.buf = &ds};
    printf("sem: stat %s", err(ctl(id, 0, IPC_STAT, (long)u.buf)));
    printf(" nsems %lu mode %o key %d owner is me %d\n", (unsigned long)ds.sem_nsems,
           ds.sem_perm.mode & 0777, (int)ds.sem_perm.__key, ds.sem_perm.uid == geteuid() &&
           ds.sem_perm.cuid == geteuid());
    printf("sem: otime before any semop %ld\n", (long)ds.sem_otime);
    printf("sem: initial values %d %d %d\n", getval(id, 0), getval(id, 1), getval(id, 2));
    printf("sem: setval %s", err(ctl(id, 0, SETVAL, 5)));
    printf(" getval %d\n", getval(id, 0));
    printf("sem: setval 32768 %s", err(ctl(id, 0, SETVAL, 32768)));
    printf(", -1 %s\n", err(ctl(id, 0, SETVAL, -1)));
    printf("sem: getval semnum 3 %s", err(getval(id, 3)));
    printf(", -1 %s\n", err(getval(id, -1)));
    unsigned short all[3] = {1, 2, 3}, got[3] = {0};
    printf("sem: setall %s\n", err(ctl(id, 0, SETALL, (long)all)));
    printf("sem: getall %s", err(ctl(id, 0, GETALL, (long)got)));
    printf(" %d %d %d\n", got[0], got[1], got[2]);
    printf("sem: getpid is me %d\n", ctl(id, 1, GETPID, 0) == getpid());
    printf("sem: ncnt %d zcnt %d\n", ctl(id, 0, GETNCNT, 0), ctl(id, 0, GETZCNT, 0));
    struct sembuf two[2] = {{0, -1, 0}, {1, 1, 0}};
    printf("sem: two ops %s", err(semop(id, two, 2)));
    printf(" -> %d %d\n", getval(id, 0), getval(id, 1));
    ctl(id, 0, IPC_STAT, (long)&ds);
    printf("sem: otime set %d\n", ds.sem_otime != 0);
    struct sembuf nowait[2] = {{0, 5, 0}, {2, -10, IPC_NOWAIT}};
    printf("sem: nowait would block %s", err(semop(id, nowait, 2)));
    printf(", nothing applied %d\n", getval(id, 0));
    struct sembuf same[3] = {{2, 2, 0}, {2, -4, 0}, {2, 1, 0}};
    printf("sem: same sem in order %s", err(semop(id, same, 3)));
    printf(" -> %d\n", getval(id, 2));
    printf("sem: wait for zero on 0 %s\n", err(op1(id, 0, 0, 0)));
    printf("sem: wait for zero nowait %s\n", err(op1(id, 1, 0, IPC_NOWAIT)));
    ctl(id, 2, SETVAL, 32767);
    printf("sem: overflow %s\n", err(op1(id, 2, 1, 0)));
    static struct sembuf many[501];
    printf("sem: 501 ops %s", err(semop(id, many, 501)));
    printf(", 0 ops %s\n", err(semop(id, many, 0)));
    printf("sem: sem_num 3 %s\n", err(op1(id, 3, 1, 0)));
    printf("sem: bad sops %s\n", err(semop(id, BAD, 1)));
    printf("sem: semid -1 %s\n", err(op1(-1, 0, 1, 0)));
    printf("sem: bad cmd %s\n", err(ctl(id, 0, 999, 0)));
    printf("sem: stat bad pointer %s", err(ctl(id, 0, IPC_STAT, (long)BAD)));
    printf(", getall bad pointer %s", err(ctl(id, 0, GETALL, (long)BAD)));
    printf(", setall bad pointer %s\n", err(ctl(id, 0, SETALL, (long)BAD)));
    unsigned short big[3] = {1, 40000, 1};
    printf("sem: setall 40000 %s\n", err(ctl(id, 0, SETALL, (long)big)));
    ds.sem_perm.mode = 0640;
    printf("sem: ipc_set %s", err(ctl(id, 0, IPC_SET, (long)&ds)));
    ctl(id, 0, IPC_STAT, (long)&ds);
    printf(" mode %o\n", ds.sem_perm.mode & 0777);
    struct seminfo si;
    printf("sem: ipc_info %s", err(ctl(id, 0, IPC_INFO, (long)&si)));
    printf(" semmsl>0 %d", si.semmsl > 0);
    printf(", sem_info %s", err(ctl(id, 0, SEM_INFO, (long)&si)));
    printf(" sets>=1 %d\n", si.semusz >= 1);
    int ro = semget(IPC_PRIVATE, 1, 0400);
    long r = op1(ro, 0, 1, 0);
    printf("sem: write to 0400 set refused unless root %d\n",
           geteuid() == 0 ? r == 0 : (r < 0 && errno == EACCES));
    ctl(ro, 0, IPC_RMID, 0);
    printf("sem: rmid %s", err(ctl(id, 0, IPC_RMID, 0)));
    printf(", getval after %s", err(getval(id, 0)));
    printf(", semop after %s", err(op1(id, 0, 1, 0)));
    printf(", rmid again %s\n", err(ctl(id, 0, IPC_RMID, 0)));
}

static void sem_block(void) {
    int id = semget(IPC_PRIVATE, 2, 0600);
    pid_t c = fork();
    if (c == 0)
        _exit(op1(id, 0, -1, 0) == 0 ? 0 : 1);
    await_count(id, 0, GETNCNT, 1);
    printf("block: child waits: ncnt %d zcnt %d\n", ctl(id, 0, GETNCNT, 0),
           ctl(id, 0, GETZCNT, 0));
    printf("block: post %s\n", err(op1(id, 0, 1, 0)));
    printf("block: child woke %d", child_status(c));
    printf(", value %d, pid is child %d, ncnt %d\n", getval(id, 0), ctl(id, 0, GETPID, 0) == c,
           ctl(id, 0, GETNCNT, 0));

    ctl(id, 1, SETVAL, 2);
    c = fork();
    if (c == 0)
        _exit(op1(id, 1, 0, 0) == 0 ? 0 : 1);
    await_count(id, 1, GETZCNT, 1);
    printf("block: zero waiter zcnt %d\n", ctl(id, 1, GETZCNT, 0));
    op1(id, 1, -1, 0);
    printf("block: still one, zcnt %d\n", ctl(id, 1, GETZCNT, 0));
    op1(id, 1, -1, 0);
    printf("block: zero waiter woke %d\n", child_status(c));

    /* Two ops: the first could go, the second must wait; nothing applies until both can. */
    ctl(id, 0, SETVAL, 1);
    ctl(id, 1, SETVAL, 0);
    c = fork();
    if (c == 0) {
        struct sembuf b[2] = {{0, -1, 0}, {1, -1, 0}};
        _exit(semop(id, b, 2) == 0 ? 0 : 1);
    }
    await_count(id, 1, GETNCNT, 1);
    printf("block: atomic: sem0 %d ncnt0 %d ncnt1 %d\n", getval(id, 0), ctl(id, 0, GETNCNT, 0),
           ctl(id, 1, GETNCNT, 0));
    ctl(id, 1, SETVAL, 1);
    printf("block: setval woke it %d", child_status(c));
    printf(", values %d %d\n", getval(id, 0), getval(id, 1));

    /* Two waiters, one post each. */
    pid_t a = fork();
    if (a == 0)
        _exit(op1(id, 0, -1, 0) == 0 ? 0 : 1);
    pid_t b = fork();
    if (b == 0)
        _exit(op1(id, 0, -1, 0) == 0 ? 0 : 1);
    await_count(id, 0, GETNCNT, 2);
    printf("block: two waiters ncnt %d\n", ctl(id, 0, GETNCNT, 0));
    op1(id, 0, 1, 0);
    while (ctl(id, 0, GETNCNT, 0) != 1)
        usleep(1000);
    printf("block: one woke, ncnt %d value %d\n", ctl(id, 0, GETNCNT, 0), getval(id, 0));
    op1(id, 0, 1, 0);
    int sa = child_status(a);
    printf("block: both done %d %d\n", sa, child_status(b));
    ctl(id, 0, IPC_RMID, 0);
}

static void sem_undo(void) {
    int id = semget(IPC_PRIVATE, 1, 0600);
    pid_t c = fork();
    if (c == 0) {
        op1(id, 0, 3, SEM_UNDO);
        op1(id, 0, -1, SEM_UNDO);
        op1(id, 0, 10, 0);
        _exit(0);
    }
    child_status(c);
    printf("undo: after exit %d, pid is child %d\n", getval(id, 0), ctl(id, 0, GETPID, 0) == c);

    /* An undo that would go above SEMVMX is clamped. */
    ctl(id, 0, SETVAL, 5);
    int p[2], q[2];
    pipe(p);
    pipe(q);
    char x;
    c = fork();
    if (c == 0) {
        op1(id, 0, -1, SEM_UNDO);
        write(p[1], "x", 1);
        read(q[0], &x, 1);
        _exit(0);
    }
    read(p[0], &x, 1);
    op1(id, 0, 32763, 0);
    printf("undo: before exit %d\n", getval(id, 0));
    write(q[1], "x", 1);
    child_status(c);
    printf("undo: clamped %d\n", getval(id, 0));

    /* SETVAL clears the adjustments. */
    ctl(id, 0, SETVAL, 0);
    c = fork();
    if (c == 0) {
        op1(id, 0, 2, SEM_UNDO);
        write(p[1], "x", 1);
        read(q[0], &x, 1);
        _exit(0);
    }
    read(p[0], &x, 1);
    ctl(id, 0, SETVAL, 7);
    write(q[1], "x", 1);
    child_status(c);
    printf("undo: setval cleared it %d\n", getval(id, 0));

    /* A lock held by a process that is killed is given back, waking the waiter. */
    ctl(id, 0, SETVAL, 1);
    c = fork();
    if (c == 0) {
        op1(id, 0, -1, SEM_UNDO);
        write(p[1], "x", 1);
        for (;;)
            pause();
    }
    read(p[0], &x, 1);
    printf("undo: lock taken %d\n", getval(id, 0));
    pid_t w = fork();
    if (w == 0)
        _exit(op1(id, 0, -1, 0) == 0 ? 0 : 1);
    await_count(id, 0, GETNCNT, 1);
    kill(c, SIGKILL);
    int sc = child_status(c);
    int sw = child_status(w);
    printf("undo: holder killed %d, waiter got it %d, value %d\n", sc, sw, getval(id, 0));
    /* Without SEM_UNDO, nothing is undone. */
    c = fork();
    if (c == 0) {
        op1(id, 0, 4, 0);
        _exit(0);
    }
    child_status(c);
    printf("undo: no SEM_UNDO kept %d\n", getval(id, 0));
    ctl(id, 0, IPC_RMID, 0);
}

static void sem_timeout(void) {
    int id = semget(IPC_PRIVATE, 1, 0600);
    struct sembuf down = {0, -1, 0};
    struct timespec ts = {0, 50 * 1000 * 1000};
    printf("timeout: 50ms %s\n", err(timedop(id, &down, 1, &ts)));
    struct timespec zero = {0, 0};
    printf("timeout: zero %s\n", err(timedop(id, &down, 1, &zero)));
    struct timespec bad = {0, 1000000000};
    printf("timeout: nsec 1e9 %s", err(timedop(id, &down, 1, &bad)));
    printf(", negative %s\n", err(timedop(id, &down, 1, &(struct timespec){-1, 0})));
    printf("timeout: bad pointer %s\n", err(timedop(id, &down, 1, BAD)));
    ctl(id, 0, SETVAL, 1);
    printf("timeout: can go %s", err(timedop(id, &down, 1, &zero)));
    printf(" value %d\n", getval(id, 0));
    printf("timeout: ncnt after %d\n", ctl(id, 0, GETNCNT, 0));
    /* A timed wait woken in time. */
    pid_t c = fork();
    if (c == 0) {
        struct timespec ten = {10, 0};
        _exit(timedop(id, &down, 1, &ten) == 0 ? 0 : 1);
    }
    await_count(id, 0, GETNCNT, 1);
    op1(id, 0, 1, 0);
    printf("timeout: woken before its timeout %d\n", child_status(c));
    ctl(id, 0, IPC_RMID, 0);
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int s) {
    (void)s;
    got_usr1 = 1;
}

static void sem_intr(void) {
    int id = semget(IPC_PRIVATE, 1, 0600);
    for (int restart = 0; restart < 2; restart++) {
        struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = restart ? SA_RESTART : 0};
        sigaction(SIGUSR1, &sa, 0);
        got_usr1 = 0;
        pid_t parent = getpid();
        pid_t c = fork();
        if (c == 0) {
            await_count(id, 0, GETNCNT, 1);
            kill(parent, SIGUSR1);
            _exit(0);
        }
        long r = op1(id, 0, -1, 0);
        printf("intr: SA_RESTART %d: %s handler ran %d ncnt %d\n", restart, err(r), got_usr1,
               ctl(id, 0, GETNCNT, 0));
        child_status(c);
    }
    ctl(id, 0, IPC_RMID, 0);
}

static void sem_idrm(void) {
    int id = semget(IPC_PRIVATE, 1, 0600);
    pid_t c = fork();
    if (c == 0) {
        long r = op1(id, 0, -1, 0);
        _exit(r == 0 ? 0 : errno == EIDRM ? 2 : 3);
    }
    pid_t d = fork();
    if (d == 0) {
        struct sembuf z = {0, -1, 0};
        struct timespec ten = {10, 0};
        long r = timedop(id, &z, 1, &ten);
        _exit(r == 0 ? 0 : errno == EIDRM ? 2 : 3);
    }
    await_count(id, 0, GETNCNT, 2);
    printf("idrm: rmid %s\n", err(ctl(id, 0, IPC_RMID, 0)));
    int sc = child_status(c) == 2;
    printf("idrm: waiter got EIDRM %d, timed waiter got EIDRM %d\n", sc, child_status(d) == 2);
    printf("idrm: fresh call %s\n", err(op1(id, 0, -1, 0)));
}

struct mbuf {
    long mtype;
    char mtext[64];
};

static long snd(int q, long type, const char *text, int flg) {
    struct mbuf m = {type, {0}};
    strcpy(m.mtext, text);
    return msgsnd(q, &m, strlen(text), flg);
}

static void msg_basic(void) {
    int key = key_for(2);
    printf("msg: absent key %s\n", err(msgget(key, 0600)));
    int kq = msgget(key, IPC_CREAT | 0600);
    printf("msg: create by key %s, again same %d", err(kq), msgget(key, 0) == kq);
    printf(", excl %s\n", err(msgget(key, IPC_CREAT | IPC_EXCL | 0600)));
    msgctl(kq, IPC_RMID, 0);
    int q = msgget(IPC_PRIVATE, 0600);
    printf("msg: private %s\n", err(q));
    struct msqid_ds ds;
    printf("msg: stat %s", err(msgctl(q, IPC_STAT, &ds)));
    printf(" qnum %lu cbytes %lu qbytes %lu key %d\n", (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes,
           (unsigned long)ds.msg_qbytes, (int)ds.msg_perm.__key);
    printf("msg: send 3 %s", err(snd(q, 3, "three", 0)));
    printf(" 1 %s", err(snd(q, 1, "one-a", 0)));
    printf(" 2 %s", err(snd(q, 2, "two", 0)));
    printf(" 1 %s\n", err(snd(q, 1, "one-b", 0)));
    msgctl(q, IPC_STAT, &ds);
    printf("msg: qnum %lu cbytes %lu lspid is me %d lrpid %d\n", (unsigned long)ds.msg_qnum,
           (unsigned long)ds.__msg_cbytes, ds.msg_lspid == getpid(), ds.msg_lrpid);
    struct mbuf m;
    long n;
    memset(&m, 0, sizeof m);
    n = msgrcv(q, &m, sizeof m.mtext, 2, 0);
    printf("msg: type 2 -> %ld %ld %s\n", n, m.mtype, m.mtext);
    memset(&m, 0, sizeof m);
    n = msgrcv(q, &m, sizeof m.mtext, -2, 0);
    printf("msg: type -2 -> %ld %ld %s\n", n, m.mtype, m.mtext);
    memset(&m, 0, sizeof m);
    n = msgrcv(q, &m, sizeof m.mtext, 1, MSG_EXCEPT);
    printf("msg: except 1 -> %ld %ld %s\n", n, m.mtype, m.mtext);
    memset(&m, 0, sizeof m);
    n = msgrcv(q, &m, sizeof m.mtext, 0, 0);
    printf("msg: type 0 -> %ld %ld %s\n", n, m.mtype, m.mtext);
    printf("msg: empty nowait %s", err(msgrcv(q, &m, sizeof m.mtext, 0, IPC_NOWAIT)));
    printf(", no type 7 nowait %s\n", err(msgrcv(q, &m, sizeof m.mtext, 7, IPC_NOWAIT)));
    msgctl(q, IPC_STAT, &ds);
    printf("msg: lrpid is me %d qnum %lu\n", ds.msg_lrpid == getpid(), (unsigned long)ds.msg_qnum);
    snd(q, 5, "hello world", 0);
    printf("msg: too long %s", err(msgrcv(q, &m, 5, 0, IPC_NOWAIT)));
    msgctl(q, IPC_STAT, &ds);
    printf(", still queued %lu\n", (unsigned long)ds.msg_qnum);
    memset(&m, 0, sizeof m);
    n = msgrcv(q, &m, 5, 0, MSG_NOERROR);
    printf("msg: noerror -> %ld %s\n", n, m.mtext);
    printf("msg: empty message %s", err(snd(q, 9, "", 0)));
    printf(" -> %ld\n", (long)msgrcv(q, &m, sizeof m.mtext, 9, 0));
    printf("msg: mtype 0 %s", err(snd(q, 0, "x", 0)));
    printf(", -1 %s\n", err(snd(q, -1, "x", 0)));
    static struct {
        long t;
        char text[9000];
    } huge = {1, {0}};
    printf("msg: 8193 bytes %s", err(msgsnd(q, &huge, 8193, 0)));
    printf(", 8192 bytes %s\n", err(msgsnd(q, &huge, 8192, 0)));
    msgrcv(q, &huge, 8192, 0, 0);
    printf("msg: bad msgp send %s\n", err(msgsnd(q, BAD, 4, 0)));
    snd(q, 1, "lost", 0);
    printf("msg: bad msgp recv %s", err(msgrcv(q, BAD, 8, 0, IPC_NOWAIT)));
    msgctl(q, IPC_STAT, &ds);
    printf(", message gone %d\n", ds.msg_qnum == 0);
    printf("msg: msqid -1 send %s", err(snd(-1, 1, "x", 0)));
    printf(" recv %s\n", err(msgrcv(-1, &m, 8, 0, IPC_NOWAIT)));
    printf("msg: negative size recv %s\n", err(msgrcv(q, &m, -1, 0, IPC_NOWAIT)));
    printf("msg: stat bad pointer %s", err(msgctl(q, IPC_STAT, BAD)));
    printf(", bad cmd %s\n", err(msgctl(q, 999, &ds)));
    msgctl(q, IPC_STAT, &ds);
    ds.msg_qbytes = 100;
    ds.msg_perm.mode = 0640;
    printf("msg: ipc_set %s", err(msgctl(q, IPC_SET, &ds)));
    msgctl(q, IPC_STAT, &ds);
    printf(" qbytes %lu mode %o\n", (unsigned long)ds.msg_qbytes, ds.msg_perm.mode & 0777);
    char sixty[61];
    memset(sixty, 'a', 60);
    sixty[60] = 0;
    printf("msg: 60 bytes %s", err(snd(q, 1, sixty, 0)));
    printf(", 60 more nowait %s\n", err(snd(q, 1, sixty, IPC_NOWAIT)));
    struct msginfo mi;
    printf("msg: ipc_info %s", err(msgctl(0, IPC_INFO, (struct msqid_ds *)&mi)));
    printf(" msgmax>0 %d", mi.msgmax > 0);
    printf(", msg_info %s\n", err(msgctl(0, MSG_INFO, (struct msqid_ds *)&mi)));
    printf("msg: rmid %s", err(msgctl(q, IPC_RMID, 0)));
    printf(", send after %s", err(snd(q, 1, "x", 0)));
    printf(", rmid again %s\n", err(msgctl(q, IPC_RMID, 0)));
}

static void msg_block(void) {
    int q = msgget(IPC_PRIVATE, 0600);
    int p[2];
    pipe(p);
    char x;
    /* A receiver waiting for type 5 skips the type 4 message. */
    pid_t c = fork();
    if (c == 0) {
        struct mbuf m = {0};
        write(p[1], "x", 1);
        long n = msgrcv(q, &m, sizeof m.mtext, 5, 0);
        _exit(n == 4 && m.mtype == 5 && !strcmp(m.mtext, "five") ? 0 : 1);
    }
    read(p[0], &x, 1);
    snd(q, 4, "four", 0);
    snd(q, 5, "five", 0);
    printf("msgblock: receiver got type 5 %d\n", child_status(c));
    struct msqid_ds ds;
    msgctl(q, IPC_STAT, &ds);
    printf("msgblock: left qnum %lu, lrpid is child %d\n", (unsigned long)ds.msg_qnum,
           ds.msg_lrpid == c);
    struct mbuf m;
    msgrcv(q, &m, sizeof m.mtext, 0, 0);

    /* A sender waits for room. */
    ds.msg_qbytes = 10;
    msgctl(q, IPC_SET, &ds);
    snd(q, 1, "0123456789", 0);
    printf("msgblock: full, nowait %s\n", err(snd(q, 2, "abcde", IPC_NOWAIT)));
    c = fork();
    if (c == 0) {
        write(p[1], "x", 1);
        _exit(snd(q, 2, "abcde", 0) == 0 ? 0 : 1);
    }
    read(p[0], &x, 1);
    memset(&m, 0, sizeof m);
    msgrcv(q, &m, sizeof m.mtext, 0, 0);
    printf("msgblock: took %s", m.mtext);
    printf(", sender done %d\n", child_status(c));
    memset(&m, 0, sizeof m);
    long got = msgrcv(q, &m, sizeof m.mtext, 0, IPC_NOWAIT);
    printf("msgblock: then %ld %s\n", got, m.mtext);

    /* Messages between processes, both ways: ping-pong. */
    int back = msgget(IPC_PRIVATE, 0600);
    c = fork();
    if (c == 0) {
        for (int i = 0; i < 50; i++) {
            struct mbuf r = {0};
            if (msgrcv(q, &r, sizeof r.mtext, 0, 0) < 0)
                _exit(1);
            r.mtext[0]++;
            if (msgsnd(back, &r, 1, 0) < 0)
                _exit(2);
        }
        _exit(0);
    }
    int ok = 1;
    for (int i = 0; i < 50; i++) {
        struct mbuf s = {1, {(char)i}}, r = {0};
        msgsnd(q, &s, 1, 0);
        if (msgrcv(back, &r, 1, 0, 0) != 1 || r.mtext[0] != (char)(i + 1))
            ok = 0;
    }
    printf("msgblock: ping-pong %d", ok);
    printf(" child %d\n", child_status(c));
    msgctl(back, IPC_RMID, 0);

    /* A waiting receiver hears EIDRM. (It is waiting when the pipe byte and a pause have
     * passed; a retry with a longer pause covers a slow start.) */
    int r = -1;
    for (int tries = 0; tries < 6 && r != 2; tries++) {
        int q2 = msgget(IPC_PRIVATE, 0600);
        c = fork();
        if (c == 0) {
            struct mbuf mm;
            write(p[1], "x", 1);
            long n = msgrcv(q2, &mm, sizeof mm.mtext, 0, 0);
            _exit(n >= 0 ? 0 : errno == EIDRM ? 2 : 3);
        }
        read(p[0], &x, 1);
        usleep(20000 << tries);
        msgctl(q2, IPC_RMID, 0);
        r = child_status(c);
    }
    printf("msgblock: waiter got EIDRM %d\n", r == 2);
    msgctl(q, IPC_RMID, 0);
}

static const char *self_path;

static int nattch(int id) {
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) < 0)
        return -1;
    return (int)ds.shm_nattch;
}

static void shm_basic(void) {
    long page = sysconf(_SC_PAGESIZE);
    printf("shm: size 0 %s\n", err(shmget(IPC_PRIVATE, 0, 0600)));
    int key = key_for(3);
    printf("shm: absent key %s\n", err(shmget(key, 100, 0600)));
    int kid = shmget(key, 100, IPC_CREAT | 0600);
    printf("shm: by key %s, same %d", err(kid), shmget(key, 50, 0) == kid);
    printf(", bigger %s", err(shmget(key, 200, 0)));
    printf(", excl %s\n", err(shmget(key, 100, IPC_CREAT | IPC_EXCL | 0600)));
    shmctl(kid, IPC_RMID, 0);
    int id = shmget(IPC_PRIVATE, 10000, 0600);
    struct shmid_ds ds;
    printf("shm: stat %s", err(shmctl(id, IPC_STAT, &ds)));
    printf(" segsz %lu nattch %lu cpid is me %d lpid %d mode %o atime %ld\n",
           (unsigned long)ds.shm_segsz,
           (unsigned long)ds.shm_nattch, ds.shm_cpid == getpid(), ds.shm_lpid,
           ds.shm_perm.mode & 0777, (long)ds.shm_atime);
    char *p = shmat(id, NULL, 0);
    printf("shm: attach %s, page aligned %d, reads zero %d\n",
           p == (void *)-1 ? err(-1) : "ok", ((uintptr_t)p & (page - 1)) == 0,
           p[0] == 0 && p[9999] == 0);
    strcpy(p, "hello");
    p[3 * page - 1] = 'z'; /* the rounded-up tail is there too */
    shmctl(id, IPC_STAT, &ds);
    printf("shm: nattch %lu lpid is me %d atime set %d\n", (unsigned long)ds.shm_nattch,
           ds.shm_lpid == getpid(), ds.shm_atime != 0);
    char *r = shmat(id, NULL, SHM_RDONLY);
    printf("shm: read-only attach sees %s, nattch %d, distinct %d\n", r, nattch(id), r != p);
    pid_t c = fork();
    if (c == 0) {
        r[0] = 'x';
        _exit(0);
    }
    printf("shm: write to read-only attach: signal %d\n", child_status(c) - 1000);
    printf("shm: detach read-only %s", err(shmdt(r)));
    printf(" nattch %d\n", nattch(id));
    printf("shm: detach unaligned %s", err(shmdt(p + 1)));
    printf(", not attached %s", err(shmdt(&ds)));
    printf(", again %s\n", err(shmdt(r)));
    /* Attach at a given address. */
    char *fixed = mmap(NULL, 16 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(fixed, 16 * page);
    char *f = shmat(id, fixed, 0);
    printf("shm: at given address %d sees %s\n", f == fixed, f == (void *)-1 ? "-" : f);
    printf("shm: over a mapping %s\n", err(shmat(id, fixed, 0) == (void *)-1 ? -1 : 0));
    shmdt(f);
    printf("shm: unaligned %s\n", err(shmat(id, fixed + 1, 0) == (void *)-1 ? -1 : 0));
    f = shmat(id, fixed + 1, SHM_RND);
    printf("shm: SHM_RND rounds down %d\n", f == fixed);
    shmdt(f);
    printf("shm: bad id %s", err(shmat(id + 1, 0, 0) == (void *)-1 ? -1 : 0));
    printf(", -1 %s\n", err(shmat(-1, 0, 0) == (void *)-1 ? -1 : 0));
    printf("shm: stat bad pointer %s", err(shmctl(id, IPC_STAT, BAD)));
    printf(", bad cmd %s\n", err(shmctl(id, 999, &ds)));
    ds.shm_perm.mode = 0640;
    printf("shm: ipc_set %s", err(shmctl(id, IPC_SET, &ds)));
    shmctl(id, IPC_STAT, &ds);
    printf(" mode %o\n", ds.shm_perm.mode & 0777);
    struct shminfo si;
    struct shm_info sinfo;
    printf("shm: ipc_info %s", err(shmctl(0, IPC_INFO, (struct shmid_ds *)&si)));
    printf(" shmmin %lu", (unsigned long)si.shmmin);
    printf(", shm_info %s", err(shmctl(0, SHM_INFO, (struct shmid_ds *)&sinfo)));
    printf(" used>=1 %d\n", sinfo.used_ids >= 1);
    /* Removed while attached: marked, still usable, gone with the last detach. */
    printf("shm: rmid attached %s", err(shmctl(id, IPC_RMID, 0)));
    shmctl(id, IPC_STAT, &ds);
    printf(" dest %d key %d nattch %lu tail %c\n", (ds.shm_perm.mode & SHM_DEST) != 0,
           (int)ds.shm_perm.__key, (unsigned long)ds.shm_nattch, p[3 * page - 1]);
    printf("shm: last detach %s", err(shmdt(p)));
    printf(", then stat %s\n", err(shmctl(id, IPC_STAT, &ds)));
}

static void shm_fork(void) {
    int id = shmget(IPC_PRIVATE, 4096, 0600);
    char *p = shmat(id, NULL, 0);
    strcpy(p, "parent");
    int a[2], b[2];
    pipe(a);
    pipe(b);
    char x;
    pid_t c = fork();
    if (c == 0) {
        int ok = !strcmp(p, "parent");
        int n = nattch(id);
        strcpy(p, "child");
        write(a[1], "x", 1);
        read(b[0], &x, 1);
        ok = ok && !strcmp(p, "parent again");
        shmdt(p);
        _exit(ok ? n : 100);
    }
    read(a[0], &x, 1);
    printf("shmfork: parent sees %s, nattch with child %d\n", p, nattch(id));
    strcpy(p, "parent again");
    write(b[1], "x", 1);
    printf("shmfork: child saw the writes and nattch %d\n", child_status(c));
    printf("shmfork: nattch after child detached and exited %d\n", nattch(id));

    /* exec detaches: the new program has no attach of its own. */
    c = fork();
    if (c == 0) {
        char s[16];
        snprintf(s, sizeof s, "%d", id);
        execl(self_path, self_path, "after-exec", s, (char *)NULL);
        _exit(99);
    }
    printf("shmfork: nattch seen after exec %d\n", child_status(c));

    /* The child keeps the segment alive after the parent detached and removed it. */
    c = fork();
    if (c == 0) {
        read(b[0], &x, 1);
        _exit(!strcmp(p, "still here") ? 0 : 1);
    }
    strcpy(p, "still here");
    shmctl(id, IPC_RMID, 0);
    shmdt(p);
    printf("shmfork: parent detached, nattch %d\n", nattch(id));
    write(b[1], "x", 1);
    printf("shmfork: child read it %d\n", child_status(c));
    printf("shmfork: gone after child exit %s\n", err(nattch(id)));

    /* Three processes count in a segment, under a semaphore. */
    int sem = semget(IPC_PRIVATE, 1, 0600);
    int cnt = shmget(IPC_PRIVATE, sizeof(int), 0600);
    int *n = shmat(cnt, NULL, 0);
    *n = 0;
    ctl(sem, 0, SETVAL, 1);
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            for (int j = 0; j < 200; j++) {
                op1(sem, 0, -1, SEM_UNDO);
                int v = *n;
                sched_yield();
                *n = v + 1;
                op1(sem, 0, 1, SEM_UNDO);
            }
            _exit(0);
        }
    }
    for (int i = 0; i < 3; i++)
        child_status(kids[i]);
    printf("shmfork: counted under a semaphore %d\n", *n);
    shmdt(n);
    shmctl(cnt, IPC_RMID, 0);
    ctl(sem, 0, IPC_RMID, 0);
}

static int thr_sem, thr_q;
static void *thr_down(void *a) {
    (void)a;
    return (void *)(long)op1(thr_sem, 0, -1, SEM_UNDO);
}
static void *thr_recv(void *a) {
    struct mbuf m = {0};
    long n = msgrcv(thr_q, &m, sizeof m.mtext, (long)a, 0);
    return (void *)(n == 1 && m.mtype == (long)a ? 0L : 1L);
}

/* Threads of one process wait and are woken like processes; SEM_UNDO is the process's. */
static void threads(void) {
    thr_sem = semget(IPC_PRIVATE, 1, 0600);
    thr_q = msgget(IPC_PRIVATE, 0600);
    pthread_t th[3], rt[2];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], 0, thr_down, 0);
    await_count(thr_sem, 0, GETNCNT, 3);
    printf("threads: waiting %d\n", ctl(thr_sem, 0, GETNCNT, 0));
    op1(thr_sem, 0, 3, 0);
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(th[i], &r);
        ok = ok && r == 0;
    }
    printf("threads: all woke %d value %d\n", ok, getval(thr_sem, 0));
    for (long i = 0; i < 2; i++)
        pthread_create(&rt[i], 0, thr_recv, (void *)(i + 1));
    struct mbuf m2 = {2, "b"}, m1 = {1, "a"};
    msgsnd(thr_q, &m2, 1, 0);
    msgsnd(thr_q, &m1, 1, 0);
    ok = 1;
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(rt[i], &r);
        ok = ok && r == 0;
    }
    printf("threads: receivers got their types %d\n", ok);
    ctl(thr_sem, 0, IPC_RMID, 0);
    msgctl(thr_q, IPC_RMID, 0);
}

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"sem", sem_basic},        {"block", sem_block}, {"undo", sem_undo},
    {"timeout", sem_timeout},  {"intr", sem_intr},   {"idrm", sem_idrm},
    {"msg", msg_basic},        {"msgblock", msg_block}, {"shm", shm_basic},
    {"shmfork", shm_fork},     {"threads", threads},
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    self_path = argv[0];
    if (argc > 2 && !strcmp(argv[1], "after-exec"))
        return nattch(atoi(argv[2]));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name))
            continue;
        alarm(30);
        cases[i].fn();
    }
    return 0;
}
