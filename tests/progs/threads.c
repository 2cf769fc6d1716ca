/* threads: what Linux threads must do, one case per argv[1] (no argument: every case, each in
 * a forked child, with its exit status). Mutexes, condition variables, barriers, rwlocks,
 * semaphores, TLS and per-thread errno, cancellation in blocking calls, detached threads,
 * signals to one thread and to the process, per-thread masks and shared handlers, exit_group
 * and execve from a non-leader thread while others block, fork from a thread, futexes
 * (private, and shared between processes), PI and robust mutexes (also process-shared, the
 * owner process dying), /proc/self/task and "Threads:", create/join rounds
 * (CLONE_CHILD_CLEARTID), raw clone (CLONE_THREAD, CLONE_VFORK) and clone3, shared fd table
 * and cwd, pthread_exit of a thread and of main. Stable output: threads join (or hand over
 * under a lock in a fixed order) before anything is printed; no tids, addresses or timings.
 * Each case arms alarm() as a watchdog, so a hang ends as SIGALRM, not a stuck test. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Long enough for the kvm rig (nested emulation, where a VM exit costs 100-300 us): there the
 * cancel case's 1 ms sleepers beside a spinning thread make every timer a kick of 3 exits,
 * and a run took up to 14 s (2026-12-03); a hang still ends as SIGALRM within the harness's
 * 60 s. */
#define WATCHDOG 45

/* <linux/futex.h> is not there for musl-gcc. */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_WAIT_PRIVATE (FUTEX_WAIT | FUTEX_PRIVATE_FLAG)
#define FUTEX_WAKE_PRIVATE (FUTEX_WAKE | FUTEX_PRIVATE_FLAG)

static const char *argv0;
/* An address nothing is mapped at (a volatile, so the compiler does not object). */
static void *volatile bad_ptr = (void *)8;

static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

static void check(const char *c, const char *what, int ok) {
    printf("%s: %s: %s\n", c, what, ok ? "ok" : "FAIL");
}

static void die(const char *what) {
    printf("FATAL %s: %s\n", what, strerror(errno));
    fflush(stdout);
    _exit(99);
}

static void ms_sleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static long ms_since(const struct timespec *a) {
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

static pthread_t spawn(void *(*fn)(void *), void *arg) {
    pthread_t t;
    int e = pthread_create(&t, NULL, fn, arg);
    if (e) {
        errno = e;
        die("pthread_create");
    }
    return t;
}

static long futex(void *addr, int op, uint32_t val, const struct timespec *ts) {
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

/* The "Threads:" line of /proc/self/status. */
static int status_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int n = -2;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    return n;
}

/* Entries of /proc/self/task. */
static int task_entries(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Waits (bounded) until both counts are `want`: a joined thread may still be leaving. */
static int wait_thread_count(int want) {
    for (int i = 0; i < 3000; i++) {
        if (status_threads() == want && task_entries() == want) return 1;
        ms_sleep(1);
    }
    return 0;
}

static void *mmap_shared(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    return p;
}

static int wait_child(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid) die("waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ------------------------------------------------------------------ ids */

static pid_t ids_pid[4], ids_tid[4];

static void *ids_fn(void *arg) {
    long i = (long)arg;
    ids_pid[i] = getpid();
    ids_tid[i] = tid();
    return NULL;
}

static int case_ids(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++) t[i] = spawn(ids_fn, (void *)i);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    int same = 1, differs = 1, distinct = 1;
    for (int i = 0; i < 4; i++) {
        same &= ids_pid[i] == getpid();
        differs &= ids_tid[i] != getpid() && ids_tid[i] > 0;
        for (int j = 0; j < i; j++) distinct &= ids_tid[i] != ids_tid[j];
    }
    check("ids", "main gettid == getpid", tid() == getpid());
    check("ids", "getpid in threads == getpid", same);
    check("ids", "gettid in threads != getpid", differs);
    check("ids", "thread tids distinct", distinct);
    check("ids", "pthread_equal(self, self)", pthread_equal(pthread_self(), pthread_self()));
    return 0;
}

/* ------------------------------------------------------------------ mutex + condvar */

#define PC_ITEMS 2000
#define PC_CAP 4
static pthread_mutex_t pc_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pc_not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pc_not_full = PTHREAD_COND_INITIALIZER;
static int pc_buf[PC_CAP], pc_head, pc_count, pc_done_producers;
static long pc_sum[2], pc_got[2];

static void *producer(void *arg) {
    long base = (long)arg;
    for (int i = 1; i <= PC_ITEMS; i++) {
        pthread_mutex_lock(&pc_mu);
        while (pc_count == PC_CAP) pthread_cond_wait(&pc_not_full, &pc_mu);
        pc_buf[(pc_head + pc_count++) % PC_CAP] = (int)(base + i);
        pthread_cond_signal(&pc_not_empty);
        pthread_mutex_unlock(&pc_mu);
    }
    pthread_mutex_lock(&pc_mu);
    pc_done_producers++;
    pthread_cond_broadcast(&pc_not_empty);
    pthread_mutex_unlock(&pc_mu);
    return NULL;
}

static void *consumer(void *arg) {
    long me = (long)arg;
    for (;;) {
        pthread_mutex_lock(&pc_mu);
        while (pc_count == 0 && pc_done_producers < 2) pthread_cond_wait(&pc_not_empty, &pc_mu);
        if (pc_count == 0) {
            pthread_mutex_unlock(&pc_mu);
            return NULL;
        }
        int v = pc_buf[pc_head];
        pc_head = (pc_head + 1) % PC_CAP;
        pc_count--;
        pthread_cond_signal(&pc_not_full);
        pthread_mutex_unlock(&pc_mu);
        pc_sum[me] += v;
        pc_got[me]++;
    }
}

static int case_mutex_cond(void) {
    pthread_t c0 = spawn(consumer, (void *)0), c1 = spawn(consumer, (void *)1);
    pthread_t p0 = spawn(producer, (void *)0), p1 = spawn(producer, (void *)100000);
    pthread_join(p0, NULL);
    pthread_join(p1, NULL);
    pthread_join(c0, NULL);
    pthread_join(c1, NULL);
    printf("mutex_cond: items %ld sum %ld\n", pc_got[0] + pc_got[1], pc_sum[0] + pc_sum[1]);
    /* A plain mutex counter under contention. */
    return 0;
}

static pthread_mutex_t cnt_mu = PTHREAD_MUTEX_INITIALIZER;
static long cnt;

static void *count_fn(void *arg) {
    pthread_mutex_t *m = arg;
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(m);
        cnt++;
        pthread_mutex_unlock(m);
    }
    return NULL;
}

static int case_mutex_counter(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) t[i] = spawn(count_fn, &cnt_mu);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("mutex_counter: %ld\n", cnt);
    /* Error checking and recursive mutexes. */
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t ec;
    pthread_mutex_init(&ec, &a);
    pthread_mutex_lock(&ec);
    check("mutex_counter", "errorcheck relock EDEADLK", pthread_mutex_lock(&ec) == EDEADLK);
    pthread_mutex_unlock(&ec);
    check("mutex_counter", "errorcheck unlock unowned EPERM", pthread_mutex_unlock(&ec) == EPERM);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_t rm;
    pthread_mutex_init(&rm, &a);
    int ok = pthread_mutex_lock(&rm) == 0 && pthread_mutex_lock(&rm) == 0 &&
             pthread_mutex_unlock(&rm) == 0 && pthread_mutex_unlock(&rm) == 0;
    check("mutex_counter", "recursive lock twice", ok);
    return 0;
}

/* ------------------------------------------------------------------ barrier */

static pthread_barrier_t bar;
static atomic_int bar_count, bar_serial, bar_bad;

static void *bar_fn(void *arg) {
    (void)arg;
    for (int r = 0; r < 20; r++) {
        atomic_fetch_add(&bar_count, 1);
        int e = pthread_barrier_wait(&bar);
        if (e == PTHREAD_BARRIER_SERIAL_THREAD) atomic_fetch_add(&bar_serial, 1);
        else if (e != 0) atomic_fetch_add(&bar_bad, 1);
        if (atomic_load(&bar_count) != 4 * (r + 1)) atomic_fetch_add(&bar_bad, 1);
        pthread_barrier_wait(&bar);
    }
    return NULL;
}

static int case_barrier(void) {
    pthread_barrier_init(&bar, NULL, 4);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) t[i] = spawn(bar_fn, NULL);
    bar_fn(NULL);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    printf("barrier: arrivals %d serial %d bad %d\n", atomic_load(&bar_count),
           atomic_load(&bar_serial), atomic_load(&bar_bad));
    pthread_barrier_destroy(&bar);
    return 0;
}

/* ------------------------------------------------------------------ other primitives */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int once_runs;
static void once_init(void) {
    ms_sleep(5);
    atomic_fetch_add(&once_runs, 1);
}
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int readers_in, max_readers, writer_overlap;
static long rw_value;
static sem_t sem_items;
static pthread_spinlock_t spin;
static long spin_count;

static void *sync_fn(void *arg) {
    long i = (long)arg;
    pthread_once(&once, once_init);
    for (int k = 0; k < 200; k++) {
        if ((k + i) % 10 == 0) {
            pthread_rwlock_wrlock(&rw);
            if (atomic_load(&readers_in) != 0) atomic_fetch_add(&writer_overlap, 1);
            rw_value++;
            pthread_rwlock_unlock(&rw);
        } else {
            pthread_rwlock_rdlock(&rw);
            int n = atomic_fetch_add(&readers_in, 1) + 1;
            int m = atomic_load(&max_readers);
            while (n > m && !atomic_compare_exchange_weak(&max_readers, &m, n)) {
            }
            atomic_fetch_sub(&readers_in, 1);
            pthread_rwlock_unlock(&rw);
        }
        pthread_spin_lock(&spin);
        spin_count++;
        pthread_spin_unlock(&spin);
    }
    for (int k = 0; k < 50; k++) sem_post(&sem_items);
    return NULL;
}

static int case_sync_misc(void) {
    sem_init(&sem_items, 0, 0);
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    pthread_t t[4];
    for (long i = 0; i < 4; i++) t[i] = spawn(sync_fn, (void *)i);
    int got = 0;
    for (int k = 0; k < 200; k++)
        if (sem_wait(&sem_items) == 0) got++;
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("sync_misc: once ran %d\n", atomic_load(&once_runs));
    printf("sync_misc: rwlock writes %ld, writer saw readers %d\n", rw_value,
           atomic_load(&writer_overlap));
    printf("sync_misc: spin %ld, sem got %d, trywait %s\n", spin_count, got,
           sem_trywait(&sem_items) == -1 && errno == EAGAIN ? "EAGAIN" : "?");
    return 0;
}

/* Timed waits time out; a timed lock of a mutex another thread holds too. */
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static sem_t held_go, held_done;

static void *holder(void *arg) {
    (void)arg;
    pthread_mutex_lock(&held);
    sem_post(&held_go);
    sem_wait(&held_done);
    pthread_mutex_unlock(&held);
    return NULL;
}

static struct timespec in_ms(clockid_t c, int ms) {
    struct timespec ts;
    clock_gettime(c, &ts);
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    return ts;
}

static int case_timed(void) {
    struct timespec t0;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&m);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct timespec dl = in_ms(CLOCK_REALTIME, 30);
    int e = pthread_cond_timedwait(&cv, &m, &dl);
    check("timed", "cond_timedwait ETIMEDOUT after >= 25ms", e == ETIMEDOUT && ms_since(&t0) >= 25);
    pthread_mutex_unlock(&m);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t cvm;
    pthread_cond_init(&cvm, &ca);
    pthread_mutex_lock(&m);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dl = in_ms(CLOCK_MONOTONIC, 30);
    e = pthread_cond_timedwait(&cvm, &m, &dl);
    check("timed", "monotonic cond_timedwait ETIMEDOUT", e == ETIMEDOUT && ms_since(&t0) >= 25);
    pthread_mutex_unlock(&m);

    sem_init(&held_go, 0, 0);
    sem_init(&held_done, 0, 0);
    pthread_t h = spawn(holder, NULL);
    sem_wait(&held_go);
    check("timed", "trylock of a held mutex EBUSY", pthread_mutex_trylock(&held) == EBUSY);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dl = in_ms(CLOCK_REALTIME, 30);
    e = pthread_mutex_timedlock(&held, &dl);
    check("timed", "mutex_timedlock ETIMEDOUT", e == ETIMEDOUT && ms_since(&t0) >= 25);
    sem_post(&held_done);
    pthread_join(h, NULL);
    check("timed", "lock after release", pthread_mutex_trylock(&held) == 0);

    sem_t s;
    sem_init(&s, 0, 0);
    dl = in_ms(CLOCK_REALTIME, 20);
    check("timed", "sem_timedwait ETIMEDOUT", sem_timedwait(&s, &dl) == -1 && errno == ETIMEDOUT);

    uint32_t word = 0;
    struct timespec rel = {0, 30000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long r = futex(&word, FUTEX_WAIT_PRIVATE, 0, &rel);
    check("timed", "FUTEX_WAIT ETIMEDOUT", r == -1 && errno == ETIMEDOUT && ms_since(&t0) >= 25);
    r = futex(&word, FUTEX_WAIT_PRIVATE, 1, &rel);
    check("timed", "FUTEX_WAIT on another value EAGAIN", r == -1 && errno == EAGAIN);
    check("timed", "FUTEX_WAKE with no waiter 0", futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL) == 0);
    return 0;
}

/* ------------------------------------------------------------------ TLS, errno */

static __thread int tls_val = 42;
static __thread char tls_buf[64];
static pthread_barrier_t tls_bar;
static int tls_ok[4], errno_ok[4];

static void *tls_fn(void *arg) {
    long i = (long)arg;
    int fresh = tls_val == 42 && tls_buf[0] == 0;
    tls_val = (int)(100 + i);
    snprintf(tls_buf, sizeof tls_buf, "thread %ld", i);
    if (i % 2 == 0) close(-1); /* EBADF */
    else open("/nonexistent/x", O_RDONLY); /* ENOENT */
    int mine = errno;
    pthread_barrier_wait(&tls_bar);
    sched_yield();
    pthread_barrier_wait(&tls_bar);
    char want[64];
    snprintf(want, sizeof want, "thread %ld", i);
    tls_ok[i] = fresh && tls_val == 100 + i && strcmp(tls_buf, want) == 0;
    errno_ok[i] = errno == mine && mine == (i % 2 == 0 ? EBADF : ENOENT);
    return NULL;
}

static int case_tls(void) {
    tls_val = 7;
    strcpy(tls_buf, "main");
    pthread_barrier_init(&tls_bar, NULL, 4);
    pthread_t t[4];
    for (long i = 0; i < 4; i++) t[i] = spawn(tls_fn, (void *)i);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    int all = 1, errs = 1;
    for (int i = 0; i < 4; i++) all &= tls_ok[i], errs &= errno_ok[i];
    check("tls", "threads start with the initial __thread values and keep their own", all);
    check("tls", "errno is per thread", errs);
    check("tls", "main's __thread values untouched", tls_val == 7 && strcmp(tls_buf, "main") == 0);
    /* pthread keys with destructors. */
    return 0;
}

static pthread_key_t key;
static atomic_int dtor_runs;
static void dtor(void *p) {
    if (p == (void *)0x1234) atomic_fetch_add(&dtor_runs, 1);
}
static void *key_fn(void *arg) {
    (void)arg;
    pthread_setspecific(key, (void *)0x1234);
    return pthread_getspecific(key) == (void *)0x1234 ? (void *)1 : NULL;
}

static int case_keys(void) {
    pthread_key_create(&key, dtor);
    pthread_setspecific(key, (void *)0x99);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) t[i] = spawn(key_fn, NULL);
    long ok = 0;
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (long)r;
    }
    printf("keys: threads saw their value %ld, destructors ran %d, main's value kept %d\n", ok,
           atomic_load(&dtor_runs), pthread_getspecific(key) == (void *)0x99);
    return 0;
}

/* ------------------------------------------------------------------ cancellation */

static int cancel_pipe[2];
static atomic_int cancel_ready, cleanups;
static pthread_mutex_t cancel_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cancel_cv = PTHREAD_COND_INITIALIZER;

static void cleanup_count(void *arg) {
    (void)arg;
    atomic_fetch_add(&cleanups, 1);
}
static void cleanup_unlock(void *arg) {
    atomic_fetch_add(&cleanups, 1);
    pthread_mutex_unlock(arg);
}

static void *cancel_read(void *arg) {
    (void)arg;
    char c;
    pthread_cleanup_push(cleanup_count, NULL);
    atomic_fetch_add(&cancel_ready, 1);
    for (;;) read(cancel_pipe[0], &c, 1);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *cancel_sleep(void *arg) {
    (void)arg;
    pthread_cleanup_push(cleanup_count, NULL);
    atomic_fetch_add(&cancel_ready, 1);
    for (;;) {
        struct timespec ts = {20, 0};
        nanosleep(&ts, NULL);
    }
    pthread_cleanup_pop(0);
    return NULL;
}

static void *cancel_cond(void *arg) {
    (void)arg;
    pthread_mutex_lock(&cancel_mu);
    pthread_cleanup_push(cleanup_unlock, &cancel_mu);
    atomic_fetch_add(&cancel_ready, 1);
    for (;;) pthread_cond_wait(&cancel_cv, &cancel_mu);
    pthread_cleanup_pop(0);
    return NULL;
}

static atomic_int disabled_reached, cancels_sent;
static void *cancel_disabled(void *arg) {
    (void)arg;
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    atomic_fetch_add(&cancel_ready, 1);
    /* Sleeps are cancellation points, but cancellation is disabled. */
    while (!atomic_load(&cancels_sent)) ms_sleep(1);
    ms_sleep(20);
    atomic_store(&disabled_reached, 1);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    pthread_testcancel();
    atomic_store(&disabled_reached, 2);
    return NULL;
}

static void *cancel_async(void *arg) {
    (void)arg;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
    atomic_fetch_add(&cancel_ready, 1);
    for (volatile unsigned long i = 0;; i++) {
    }
    return NULL;
}

static int case_cancel(void) {
    if (pipe(cancel_pipe)) die("pipe");
    void *(*fns[])(void *) = {cancel_read, cancel_sleep, cancel_cond, cancel_disabled,
                              cancel_async};
    const char *names[] = {"read", "nanosleep", "cond_wait", "disabled", "async"};
    pthread_t t[5];
    for (int i = 0; i < 5; i++) t[i] = spawn(fns[i], NULL);
    while (atomic_load(&cancel_ready) < 5) ms_sleep(1);
    ms_sleep(30); /* let them reach the blocking calls */
    for (int i = 0; i < 5; i++) pthread_cancel(t[i]);
    atomic_store(&cancels_sent, 1);
    for (int i = 0; i < 5; i++) {
        void *r;
        int e = pthread_join(t[i], &r);
        printf("cancel: %s: join %d, canceled %d\n", names[i], e, r == PTHREAD_CANCELED);
    }
    printf("cancel: cleanup handlers ran %d, disabled thread got to %d\n",
           atomic_load(&cleanups), atomic_load(&disabled_reached));
    /* The mutex the cond_wait thread held was given back by its cleanup handler. */
    check("cancel", "mutex free after cancelled cond_wait", pthread_mutex_trylock(&cancel_mu) == 0);
    return 0;
}

/* ------------------------------------------------------------------ detached */

static sem_t det_sem;
static atomic_int det_count;

static void *det_fn(void *arg) {
    if (arg) pthread_detach(pthread_self());
    atomic_fetch_add(&det_count, 1);
    sem_post(&det_sem);
    return NULL;
}

static int case_detached(void) {
    sem_init(&det_sem, 0, 0);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int state = -1;
    pthread_attr_getdetachstate(&a, &state);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 8; i++) {
            pthread_t t;
            int e = i % 2 ? pthread_create(&t, &a, det_fn, NULL)
                          : pthread_create(&t, NULL, det_fn, (void *)1);
            if (e) {
                errno = e;
                die("pthread_create detached");
            }
        }
        for (int i = 0; i < 8; i++) sem_wait(&det_sem);
    }
    printf("detached: state detached %d, ran %d\n", state == PTHREAD_CREATE_DETACHED,
           atomic_load(&det_count));
    check("detached", "threads leave", wait_thread_count(1));
    return 0;
}

/* ------------------------------------------------------------------ pthread_kill */

static atomic_int kill_hits, kill_stop;
static pthread_t kill_self;
static pid_t kill_tid;

static void kill_handler(int sig) {
    (void)sig;
    kill_self = pthread_self();
    kill_tid = tid();
    atomic_fetch_add(&kill_hits, 1);
}

static pid_t kill_tids[3];
static atomic_int kill_ready;
static void *kill_fn(void *arg) {
    kill_tids[(long)arg] = tid();
    atomic_fetch_add(&kill_ready, 1);
    while (!atomic_load(&kill_stop)) ms_sleep(1);
    return NULL;
}

static int wait_hits(atomic_int *v, int want) {
    for (int i = 0; i < 2000 && atomic_load(v) < want; i++) ms_sleep(1);
    return atomic_load(v) == want;
}

static int case_pthread_kill(void) {
    struct sigaction sa = {.sa_handler = kill_handler};
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t[3];
    for (long i = 0; i < 3; i++) t[i] = spawn(kill_fn, (void *)i);
    while (atomic_load(&kill_ready) < 3) ms_sleep(1);
    check("pthread_kill", "signal 0 to a live thread", pthread_kill(t[0], 0) == 0);
    pthread_kill(t[1], SIGUSR1);
    int got = wait_hits(&kill_hits, 1);
    check("pthread_kill", "handler ran once, in thread 1", got && pthread_equal(kill_self, t[1]));
    pthread_kill(t[2], SIGUSR1);
    got = wait_hits(&kill_hits, 2);
    check("pthread_kill", "then in thread 2", got && pthread_equal(kill_self, t[2]));
    pthread_kill(pthread_self(), SIGUSR1);
    check("pthread_kill", "to self: handled before it returns",
          atomic_load(&kill_hits) == 3 && pthread_equal(kill_self, pthread_self()));
    syscall(SYS_tgkill, getpid(), kill_tids[0], SIGUSR1);
    got = wait_hits(&kill_hits, 4);
    check("pthread_kill", "tgkill to thread 0's tid", got && kill_tid == kill_tids[0]);
    errno = 0;
    long r = syscall(SYS_tgkill, getpid() + 1000000, kill_tids[0], 0);
    check("pthread_kill", "tgkill with the wrong tgid ESRCH", r == -1 && errno == ESRCH);
    atomic_store(&kill_stop, 1);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    return 0;
}

/* ------------------------------------------------------------------ process-directed signals */

static atomic_int proc_hits;
static pid_t proc_taker;
static atomic_int proc_stop, proc_reblock, proc_reblocked;
static pid_t proc_tids[3];

static void proc_handler(int sig) {
    (void)sig;
    proc_taker = tid();
    atomic_fetch_add(&proc_hits, 1);
}

static atomic_int proc_ready;
static void *proc_fn(void *arg) {
    long i = (long)arg;
    proc_tids[i] = tid();
    if (i == 2) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
        atomic_fetch_add(&proc_ready, 1);
        while (!atomic_load(&proc_reblock)) ms_sleep(1);
        pthread_sigmask(SIG_BLOCK, &s, NULL);
        atomic_store(&proc_reblocked, 1);
    } else {
        atomic_fetch_add(&proc_ready, 1);
    }
    while (!atomic_load(&proc_stop)) ms_sleep(1);
    return NULL;
}

static int case_process_signal(void) {
    struct sigaction sa = {.sa_handler = proc_handler};
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL); /* the threads inherit it */
    pthread_t t[3];
    for (long i = 0; i < 3; i++) t[i] = spawn(proc_fn, (void *)i);
    while (atomic_load(&proc_ready) < 3) ms_sleep(1);
    int right = 0;
    for (int round = 0; round < 5; round++) {
        kill(getpid(), SIGUSR1);
        if (wait_hits(&proc_hits, round + 1) && proc_taker == proc_tids[2]) right++;
    }
    printf("process_signal: taken by the one thread not blocking it %d/5\n", right);
    atomic_store(&proc_reblock, 1);
    while (!atomic_load(&proc_reblocked)) ms_sleep(1);
    kill(getpid(), SIGUSR1);
    ms_sleep(20);
    sigset_t p;
    sigpending(&p);
    check("process_signal", "all block it: pending for the process, seen by main",
          sigismember(&p, SIGUSR1) && atomic_load(&proc_hits) == 5);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    check("process_signal", "main unblocks: taken by main at once",
          atomic_load(&proc_hits) == 6 && proc_taker == getpid());
    atomic_store(&proc_stop, 1);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    return 0;
}

/* A dedicated thread takes a process-directed signal with sigwait while every thread blocks it. */
static sigset_t sw_set;
static sem_t sw_took;
static void *sigwait_fn(void *arg) {
    (void)arg;
    int got[3];
    for (int i = 0; i < 3; i++) {
        int sig = 0;
        if (sigwait(&sw_set, &sig)) sig = -1;
        got[i] = sig;
        sem_post(&sw_took); /* a second SIGUSR1 must not find the first still pending */
    }
    return (void *)(long)(got[0] == SIGUSR1 && got[1] == SIGUSR2 && got[2] == SIGUSR1);
}

static int case_sigwait(void) {
    sigemptyset(&sw_set);
    sigaddset(&sw_set, SIGUSR1);
    sigaddset(&sw_set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &sw_set, NULL);
    sem_init(&sw_took, 0, 0);
    pthread_t t = spawn(sigwait_fn, NULL);
    int sigs[3] = {SIGUSR1, SIGUSR2, SIGUSR1};
    for (int i = 0; i < 3; i++) {
        ms_sleep(5);
        kill(getpid(), sigs[i]);
        sem_wait(&sw_took);
    }
    void *r;
    pthread_join(t, &r);
    check("sigwait", "a sigwait thread took the three signals in order", r == (void *)1);
    return 0;
}

/* ------------------------------------------------------------------ per-thread mask, shared actions */

static int mask_has(int sig) {
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, sig);
}

static void *mask_child_fn(void *arg) {
    (void)arg;
    return (void *)(long)mask_has(SIGUSR2);
}

static pthread_barrier_t mask_bar;
static void *mask_a(void *arg) {
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_barrier_wait(&mask_bar); /* main looks at its own mask now */
    pthread_barrier_wait(&mask_bar);
    pthread_t c = spawn(mask_child_fn, NULL);
    void *r;
    pthread_join(c, &r);
    return (void *)(long)(mask_has(SIGUSR2) * 2 + (long)r);
}

static atomic_int usr2_hits;
static pid_t usr2_tid;
static void usr2_handler(int sig) {
    (void)sig;
    usr2_tid = tid();
    atomic_fetch_add(&usr2_hits, 1);
}
static void *install_fn(void *arg) {
    (void)arg;
    struct sigaction sa = {.sa_handler = usr2_handler};
    sigaction(SIGUSR2, &sa, NULL);
    return NULL;
}
static void *look_fn(void *arg) {
    (void)arg;
    struct sigaction old;
    sigaction(SIGUSR2, NULL, &old);
    return (void *)(long)(old.sa_handler == SIG_IGN);
}

static int case_sigmask(void) {
    pthread_barrier_init(&mask_bar, NULL, 2);
    pthread_t a = spawn(mask_a, NULL);
    pthread_barrier_wait(&mask_bar);
    int main_has = mask_has(SIGUSR2);
    pthread_t b = spawn(mask_child_fn, NULL);
    void *rb;
    pthread_join(b, &rb);
    pthread_barrier_wait(&mask_bar);
    void *ra;
    pthread_join(a, &ra);
    check("sigmask", "a thread's pthread_sigmask leaves main's mask alone", !main_has);
    check("sigmask", "nor that of a thread main creates", rb == (void *)0);
    check("sigmask", "the blocking thread keeps it, its child inherits it", ra == (void *)3);
    /* sigaction is shared: a thread installs, main's raise runs it; main ignores, a thread sees. */
    pthread_t i = spawn(install_fn, NULL);
    pthread_join(i, NULL);
    raise(SIGUSR2);
    check("sigmask", "handler a thread installed runs for main", atomic_load(&usr2_hits) == 1 &&
                                                                 usr2_tid == getpid());
    signal(SIGUSR2, SIG_IGN);
    pthread_t l = spawn(look_fn, NULL);
    void *rl;
    pthread_join(l, &rl);
    check("sigmask", "SIG_IGN main set seen by a thread", rl == (void *)1);
    return 0;
}

/* ------------------------------------------------------------------ exit_group from a thread */

static int eg_pipe[2];
static uint32_t eg_word;
static atomic_int eg_ready;

static void *eg_read(void *arg) {
    (void)arg;
    char c;
    atomic_fetch_add(&eg_ready, 1);
    read(eg_pipe[0], &c, 1);
    printf("exit_group: read returned\n");
    return NULL;
}
static void *eg_futex(void *arg) {
    (void)arg;
    atomic_fetch_add(&eg_ready, 1);
    while (eg_word == 0) futex(&eg_word, FUTEX_WAIT_PRIVATE, 0, NULL);
    printf("exit_group: futex returned\n");
    return NULL;
}
static void *eg_sleep(void *arg) {
    (void)arg;
    atomic_fetch_add(&eg_ready, 1);
    struct timespec ts = {30, 0};
    nanosleep(&ts, NULL);
    printf("exit_group: nanosleep returned\n");
    return NULL;
}
static pthread_mutex_t eg_mu = PTHREAD_MUTEX_INITIALIZER;
static void *eg_lock(void *arg) {
    (void)arg;
    atomic_fetch_add(&eg_ready, 1);
    pthread_mutex_lock(&eg_mu);
    printf("exit_group: lock returned\n");
    return NULL;
}
static void eg_atexit(void) { printf("exit_group: atexit handler ran\n"); }
static void *eg_exit(void *arg) {
    while (atomic_load(&eg_ready) < 4) ms_sleep(1);
    ms_sleep(30);
    if (arg) {
        printf("exit_group: a thread calls exit_group(43)\n");
        syscall(SYS_exit_group, 43);
    }
    printf("exit_group: a thread calls exit(42)\n");
    exit(42);
}

static int exit_group_case(int raw) {
    if (pipe(eg_pipe)) die("pipe");
    atexit(eg_atexit);
    pthread_mutex_lock(&eg_mu);
    pthread_t r = spawn(eg_read, NULL);
    spawn(eg_futex, NULL);
    spawn(eg_sleep, NULL);
    spawn(eg_lock, NULL);
    spawn(eg_exit, raw ? (void *)1 : NULL);
    pthread_join(r, NULL);
    printf("exit_group: main's join returned\n");
    return 0;
}
static int case_exit_group(void) { return exit_group_case(0); }

/* main returns (exit_group with its value) while the others block. */
static int case_main_returns(void) {
    if (pipe(eg_pipe)) die("pipe");
    pthread_mutex_lock(&eg_mu);
    spawn(eg_read, NULL);
    spawn(eg_futex, NULL);
    spawn(eg_sleep, NULL);
    spawn(eg_lock, NULL);
    while (atomic_load(&eg_ready) < 4) ms_sleep(1);
    ms_sleep(30);
    printf("main_returns: main returns 6 while 4 threads block\n");
    return 6;
}

/* A fatal signal a thread takes ends the whole process. */
static void *fatal_fn(void *arg) {
    ms_sleep(20);
    if (arg) *(volatile int *)bad_ptr = 1;
    raise(SIGTERM);
    ms_sleep(1000);
    printf("fatal: survived\n");
    return NULL;
}
static int fatal_case(void *how) {
    pthread_t t = spawn(fatal_fn, how);
    spawn(eg_sleep, NULL);
    pthread_join(t, NULL);
    printf("fatal: main's join returned\n");
    return 0;
}
static int case_fatal_signal(void) { return fatal_case(NULL); }
static int case_segv_thread(void) { return fatal_case((void *)1); }
static int case_exit_group_raw(void) {
    fflush(stdout);
    setvbuf(stdout, NULL, _IONBF, 0); /* exit_group skips stdio's flush */
    return exit_group_case(1);
}

/* ------------------------------------------------------------------ execve from a thread */

static atomic_int ex_ready;
static int ex_pipe[2];
static void *ex_block(void *arg) {
    atomic_fetch_add(&ex_ready, 1);
    if (arg) {
        char c;
        read(ex_pipe[0], &c, 1);
    } else {
        struct timespec ts = {30, 0};
        nanosleep(&ts, NULL);
    }
    printf("exec_thread: a blocked thread woke\n");
    return NULL;
}
static void *ex_exec(void *arg) {
    (void)arg;
    while (atomic_load(&ex_ready) < 2) ms_sleep(1);
    ms_sleep(20);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    printf("exec_thread: a non-leader thread execs (leader tid differs %d)\n", tid() != getpid());
    fflush(stdout);
    execl("/proc/self/exe", argv0, "exec_child", pid, (char *)NULL);
    die("execl");
    return NULL;
}

static int case_exec_thread(void) {
    if (pipe(ex_pipe)) die("pipe");
    pthread_t r = spawn(ex_block, (void *)1);
    spawn(ex_block, NULL);
    spawn(ex_exec, NULL);
    pthread_join(r, NULL);
    printf("exec_thread: main's join returned\n");
    return 1;
}

/* The leader execs while other threads block. */
static int case_exec_main(void) {
    if (pipe(ex_pipe)) die("pipe");
    spawn(ex_block, (void *)1);
    spawn(ex_block, NULL);
    while (atomic_load(&ex_ready) < 2) ms_sleep(1);
    ms_sleep(20);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    printf("exec_main: the leader execs while 2 threads block\n");
    fflush(stdout);
    execl("/proc/self/exe", argv0, "exec_child", pid, (char *)NULL);
    die("execl");
    return 1;
}

static int case_exec_child(int argc, char **argv) {
    int old = argc > 2 ? atoi(argv[2]) : -1;
    check("exec_child", "pid kept across exec", getpid() == old);
    check("exec_child", "getpid == gettid", getpid() == tid());
    printf("exec_child: Threads %d, task entries %d\n", status_threads(), task_entries());
    /* The new image can run threads of its own. */
    pthread_t t = spawn(ids_fn, (void *)0);
    pthread_join(t, NULL);
    check("exec_child", "a new thread runs", ids_pid[0] == getpid() && ids_tid[0] != getpid());
    return 3;
}

/* ------------------------------------------------------------------ fork from a thread */

static pthread_mutex_t fork_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int fork_stop;
static void *fork_bystander(void *arg) {
    (void)arg;
    while (!atomic_load(&fork_stop)) ms_sleep(1);
    return NULL;
}
static pid_t fork_parent;
static void *waiter_fn(void *arg) { return (void *)(long)wait_child((pid_t)(long)arg); }
static void *fork_fn(void *arg) {
    (void)arg;
    pthread_mutex_lock(&fork_mu);
    fflush(stdout);
    pid_t c = fork();
    if (c < 0) die("fork");
    if (c == 0) {
        pthread_mutex_unlock(&fork_mu); /* ours: the forking thread held it */
        printf("fork_thread: child: getpid == gettid %d, Threads %d, task entries %d\n",
               getpid() == tid(), status_threads(), task_entries());
        printf("fork_thread: child: getppid is the parent's pid %d\n", getppid() == fork_parent);
        pthread_t t = spawn(ids_fn, (void *)1);
        pthread_join(t, NULL);
        printf("fork_thread: child: its own thread ran %d\n", ids_pid[1] == getpid());
        fflush(stdout);
        exit(7);
    }
    pthread_mutex_unlock(&fork_mu);
    return (void *)(long)wait_child(c);
}

static int case_fork_thread(void) {
    fork_parent = getpid();
    pthread_t b = spawn(fork_bystander, NULL);
    pthread_t f = spawn(fork_fn, NULL);
    void *r;
    pthread_join(f, &r);
    printf("fork_thread: parent thread's waitpid: status %ld\n", (long)r);
    atomic_store(&fork_stop, 1);
    pthread_join(b, NULL);
    /* And main forks while another thread lives. */
    atomic_store(&fork_stop, 0);
    b = spawn(fork_bystander, NULL);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        printf("fork_thread: child of main: Threads %d\n", status_threads());
        fflush(stdout);
        _exit(8);
    }
    printf("fork_thread: main's child: status %d\n", wait_child(c));
    /* Any thread may wait for a child another thread forked. */
    fflush(stdout);
    c = fork();
    if (c == 0) {
        ms_sleep(20);
        _exit(9);
    }
    pthread_t w = spawn(waiter_fn, (void *)(long)c);
    void *ws;
    pthread_join(w, &ws);
    printf("fork_thread: main's child reaped by another thread: status %ld\n", (long)ws);
    atomic_store(&fork_stop, 1);
    pthread_join(b, NULL);
    return 0;
}

/* ------------------------------------------------------------------ futexes between processes */

/* A value handed over through a MAP_SHARED word: correct even if waits wake spuriously. */
static int case_futex_shared(void) {
    uint32_t *w = mmap_shared(4096);
    pid_t c = fork();
    if (c == 0) {
        alarm(WATCHDOG);
        while (__atomic_load_n(&w[0], __ATOMIC_SEQ_CST) == 0) futex(&w[0], FUTEX_WAIT, 0, NULL);
        uint32_t v = w[0];
        __atomic_store_n(&w[1], v * 2, __ATOMIC_SEQ_CST);
        futex(&w[1], FUTEX_WAKE, 1, NULL);
        _exit(v);
    }
    ms_sleep(20);
    __atomic_store_n(&w[0], 21, __ATOMIC_SEQ_CST);
    futex(&w[0], FUTEX_WAKE, 1, NULL);
    while (__atomic_load_n(&w[1], __ATOMIC_SEQ_CST) == 0) futex(&w[1], FUTEX_WAIT, 0, NULL);
    printf("futex_shared: parent got %u, child exit %d\n", w[1], wait_child(c));
    return 0;
}

/* FUTEX_WAKE on shared memory reports the waiter it woke in the other process. */
static int case_futex_wake_count(void) {
    uint32_t *w = mmap_shared(4096);
    pid_t c = fork();
    if (c == 0) {
        alarm(WATCHDOG);
        long r = futex(&w[0], FUTEX_WAIT, 0, NULL);
        _exit(r == 0 ? 0 : 1);
    }
    /* Wake until it finds the child blocked in its wait (bounded by the watchdog). */
    long woke = 0;
    while ((woke = futex(&w[0], FUTEX_WAKE, 1, NULL)) == 0) ms_sleep(1);
    printf("futex_wake_count: wake reported %ld, child exit %d\n", woke, wait_child(c));
    return 0;
}

/* ------------------------------------------------------------------ PI mutexes */

static pthread_mutex_t pi_mu;
static long pi_count;
static void *pi_fn(void *arg) {
    (void)arg;
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&pi_mu);
        pi_count++;
        if (i % 500 == 0) sched_yield(); /* while holding: others contend in the kernel */
        pthread_mutex_unlock(&pi_mu);
    }
    return NULL;
}
static sem_t pi_go, pi_done;
static void *pi_holder(void *arg) {
    (void)arg;
    pthread_mutex_lock(&pi_mu);
    sem_post(&pi_go);
    sem_wait(&pi_done);
    pthread_mutex_unlock(&pi_mu);
    return NULL;
}

static int case_pi_mutex(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    int e = pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    int proto = -1;
    pthread_mutexattr_getprotocol(&a, &proto);
    e = e ? e : pthread_mutex_init(&pi_mu, &a);
    printf("pi_mutex: init %d, protocol inherit %d\n", e, proto == PTHREAD_PRIO_INHERIT);
    if (e) return 1;
    pthread_t t[4];
    for (int i = 0; i < 4; i++) t[i] = spawn(pi_fn, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("pi_mutex: count %ld\n", pi_count);
    sem_init(&pi_go, 0, 0);
    sem_init(&pi_done, 0, 0);
    pthread_t h = spawn(pi_holder, NULL);
    sem_wait(&pi_go);
    check("pi_mutex", "trylock while another thread holds it EBUSY",
          pthread_mutex_trylock(&pi_mu) == EBUSY);
    struct timespec dl = in_ms(CLOCK_REALTIME, 20);
    check("pi_mutex", "timedlock ETIMEDOUT", pthread_mutex_timedlock(&pi_mu, &dl) == ETIMEDOUT);
    sem_post(&pi_done);
    pthread_join(h, NULL);
    check("pi_mutex", "lock after the holder left", pthread_mutex_lock(&pi_mu) == 0 &&
                                                        pthread_mutex_unlock(&pi_mu) == 0);
    /* A raw FUTEX_LOCK_PI on a word a live thread owns. */
    return 0;
}

/* ------------------------------------------------------------------ robust mutexes */

static pthread_mutex_t rb_mu;
static void *rb_die_holding(void *arg) {
    pthread_mutex_lock(arg);
    return NULL; /* exits holding it */
}
static sem_t rb_locked;
static void *rb_die_later(void *arg) {
    pthread_mutex_lock(arg);
    sem_post(&rb_locked);
    ms_sleep(40);
    pthread_exit(NULL);
}

static void robust_init(pthread_mutex_t *m, int pshared) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pshared) pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    int e = pthread_mutex_init(m, &a);
    if (e) {
        errno = e;
        die("robust mutex init");
    }
}

static const char *lock_name(int e) {
    switch (e) {
    case 0: return "0";
    case EOWNERDEAD: return "EOWNERDEAD";
    case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
    case EBUSY: return "EBUSY";
    case EDEADLK: return "EDEADLK";
    default: return strerror(e);
    }
}

static int case_robust(void) {
    robust_init(&rb_mu, 0);
    pthread_t t = spawn(rb_die_holding, &rb_mu);
    pthread_join(t, NULL);
    printf("robust: lock after the owner thread exited: %s\n", lock_name(pthread_mutex_lock(&rb_mu)));
    int c = pthread_mutex_consistent(&rb_mu);
    int u = pthread_mutex_unlock(&rb_mu);
    printf("robust: consistent %d, unlock %d, lock again %s\n", c, u,
           lock_name(pthread_mutex_lock(&rb_mu)));
    pthread_mutex_unlock(&rb_mu);
    /* Blocked in lock while the owner exits. */
    sem_init(&rb_locked, 0, 0);
    t = spawn(rb_die_later, &rb_mu);
    sem_wait(&rb_locked);
    int e = pthread_mutex_lock(&rb_mu);
    printf("robust: a waiter blocked while the owner exits: %s\n", lock_name(e));
    pthread_join(t, NULL);
    /* Not made consistent: unusable after unlock. */
    pthread_mutex_unlock(&rb_mu);
    printf("robust: left inconsistent, next lock %s\n", lock_name(pthread_mutex_lock(&rb_mu)));
    return 0;
}

static uint32_t *rb_flag;
static void *rb_hold_forever(void *arg) {
    pthread_mutex_lock(arg);
    __atomic_store_n(rb_flag, 1, __ATOMIC_SEQ_CST);
    for (;;) pause();
    return NULL;
}

static int case_robust_shared(void) {
    pthread_mutex_t *m = mmap_shared(4096);
    robust_init(m, 1);
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(m);
        _exit(0); /* dies holding it */
    }
    int st = wait_child(c);
    printf("robust_shared: owner process exited %d; lock %s\n", st, lock_name(pthread_mutex_lock(m)));
    int cons = pthread_mutex_consistent(m);
    printf("robust_shared: consistent %d, unlock %d\n", cons, pthread_mutex_unlock(m));
    /* The owner process dies while this one waits in the lock. */
    uint32_t *flag = (uint32_t *)((char *)m + 2048);
    rb_flag = flag;
    c = fork();
    if (c == 0) {
        pthread_mutex_lock(m);
        __atomic_store_n(flag, 1, __ATOMIC_SEQ_CST);
        ms_sleep(40);
        _exit(5);
    }
    while (!__atomic_load_n(flag, __ATOMIC_SEQ_CST)) ms_sleep(1);
    int e = pthread_mutex_lock(m);
    printf("robust_shared: waiter while the owner process dies: %s, child exit %d\n",
           lock_name(e), wait_child(c));
    pthread_mutex_consistent(m);
    pthread_mutex_unlock(m);
    /* The owner is a non-main thread of a child process that is killed. */
    __atomic_store_n(flag, 0, __ATOMIC_SEQ_CST);
    c = fork();
    if (c == 0) {
        pthread_t t = spawn(rb_hold_forever, m);
        pthread_join(t, NULL);
        _exit(1);
    }
    while (!__atomic_load_n(flag, __ATOMIC_SEQ_CST)) ms_sleep(1);
    kill(c, SIGKILL);
    st = wait_child(c);
    e = pthread_mutex_lock(m);
    printf("robust_shared: owner thread of a killed process (status %d): %s\n", st, lock_name(e));
    return 0;
}

/* ------------------------------------------------------------------ /proc counts */

static pthread_barrier_t pc_bar;
static void *park(void *arg) {
    (void)arg;
    pthread_barrier_wait(&pc_bar);
    pthread_barrier_wait(&pc_bar);
    return NULL;
}

static int case_proc_count(void) {
    printf("proc_count: alone: Threads %d, task entries %d\n", status_threads(), task_entries());
    pthread_barrier_init(&pc_bar, NULL, 6);
    pthread_t t[5];
    for (int i = 0; i < 5; i++) t[i] = spawn(park, NULL);
    pthread_barrier_wait(&pc_bar);
    printf("proc_count: 5 more live: Threads %d, task entries %d\n", status_threads(),
           task_entries());
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)getpid());
    check("proc_count", "task/<pid>/stat readable", access(path, R_OK) == 0);
    pthread_barrier_wait(&pc_bar);
    for (int i = 0; i < 5; i++) pthread_join(t[i], NULL);
    check("proc_count", "back to 1 after the joins", wait_thread_count(1));
    return 0;
}

/* ------------------------------------------------------------------ scheduler calls */

static void *sched_fn(void *arg) {
    (void)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    int ok = sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0;
    ok &= sched_yield() == 0;
    unsigned cpu = 9999, node = 9999;
    ok &= syscall(SYS_getcpu, &cpu, &node, NULL) == 0 && cpu < CPU_SETSIZE;
    ok &= sched_getcpu() >= 0;
    ok &= sched_getaffinity(tid(), sizeof set, &set) == 0;
    ok &= sched_setaffinity(0, sizeof set, &set) == 0;
    return (void *)(long)ok;
}

static int case_sched(void) {
    pthread_t t[3];
    for (int i = 0; i < 3; i++) t[i] = spawn(sched_fn, NULL);
    long ok = (long)sched_fn(NULL);
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (long)r;
    }
    printf("sched: affinity/yield/getcpu ok in %ld of 4 threads\n", ok);
    struct sched_param sp;
    int pol;
    check("sched", "pthread_getschedparam", pthread_getschedparam(pthread_self(), &pol, &sp) == 0);
    char name[16] = "";
    pthread_setname_np(pthread_self(), "main-thread");
    pthread_getname_np(pthread_self(), name, sizeof name);
    printf("sched: name %s\n", name);
    return 0;
}

/* ------------------------------------------------------------------ create/join rounds */

static void *ret_arg(void *arg) { return arg; }

static int case_join_many(void) {
    long sum = 0;
    for (long i = 0; i < 100; i++) {
        pthread_t t = spawn(ret_arg, (void *)i);
        void *r;
        pthread_join(t, &r);
        sum += (long)r;
    }
    printf("join_many: 100 rounds, sum %ld\n", sum);
    sum = 0;
    for (int round = 0; round < 10; round++) {
        pthread_t t[16];
        for (long i = 0; i < 16; i++) t[i] = spawn(ret_arg, (void *)(i + 1));
        for (int i = 15; i >= 0; i--) {
            void *r;
            pthread_join(t[i], &r);
            sum += (long)r;
        }
    }
    printf("join_many: 10 rounds of 16, sum %ld\n", sum);
    pthread_barrier_init(&pc_bar, NULL, 65);
    pthread_t many[64];
    for (int i = 0; i < 64; i++) many[i] = spawn(park, NULL);
    pthread_barrier_wait(&pc_bar);
    printf("join_many: 64 live at once: Threads %d\n", status_threads());
    pthread_barrier_wait(&pc_bar);
    for (int i = 0; i < 64; i++) pthread_join(many[i], NULL);
    /* A small stack of our own, and a stack size. */
    pthread_attr_t a;
    pthread_attr_init(&a);
    size_t sz = 1 << 16;
    void *stk = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_attr_setstack(&a, stk, sz);
    pthread_t t;
    void *r = NULL;
    int e = pthread_create(&t, &a, ret_arg, (void *)5);
    if (!e) pthread_join(t, &r);
    printf("join_many: own stack: create %d, result %ld\n", e, (long)r);
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 1 << 20);
    e = pthread_create(&t, &a, ret_arg, (void *)6);
    if (!e) pthread_join(t, &r);
    printf("join_many: 1 MiB stack: create %d, result %ld\n", e, (long)r);
    check("join_many", "threads gone", wait_thread_count(1));
    return 0;
}

/* ------------------------------------------------------------------ raw clone, clone3 */

static atomic_int rc_ran;
static pid_t rc_tid;
static int rc_fn(void *arg) {
    rc_tid = (pid_t)syscall(SYS_gettid);
    atomic_store(&rc_ran, (int)(long)arg);
    return 0; /* the wrapper's SYS_exit: this thread only */
}
static volatile int vf_var;
static int vf_fn(void *arg) {
    (void)arg;
    vf_var = 1;
    return 9;
}

static void wait_cleared(volatile pid_t *ctid) {
    for (;;) {
        pid_t v = *ctid;
        if (v == 0) return;
        futex((void *)ctid, FUTEX_WAIT, (uint32_t)v, NULL);
    }
}

static int case_raw_clone(void) {
    size_t sz = 1 << 16;
    char *stk = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static volatile pid_t ptid, ctid;
    ctid = -1;
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
    int r = clone(rc_fn, stk + sz, flags, (void *)7, (pid_t *)&ptid, NULL, (pid_t *)&ctid);
    if (r < 0) {
        printf("raw_clone: thread clone failed: %s\n", strerror(errno));
    } else {
        wait_cleared(&ctid);
        printf("raw_clone: thread ran %d, tid returned == set == its gettid %d, not the pid %d\n",
               atomic_load(&rc_ran), r == ptid && r == rc_tid, r != getpid());
    }
    /* CLONE_VM | CLONE_VFORK: the parent sleeps until the child exits, and sees its writes. */
    vf_var = 0;
    pid_t c = clone(vf_fn, stk + sz, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    if (c < 0) {
        printf("raw_clone: vfork clone failed: %s\n", strerror(errno));
        return 0;
    }
    int seen = vf_var;
    printf("raw_clone: vfork child's write seen on return %d, its status %d\n", seen, wait_child(c));
    /* vfork() itself. */
    vf_var = 0;
    c = vfork();
    if (c == 0) {
        vf_var = 2;
        _exit(4);
    }
    seen = vf_var;
    printf("raw_clone: vfork(): write seen %d, status %d\n", seen, wait_child(c));
    return 0;
}

struct clone_args_v0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static atomic_int c3_ran;
static void c3_child(void) {
    atomic_store(&c3_ran, (int)syscall(SYS_gettid));
}

/* clone3; the child runs `fn` on its new stack and exits (SYS_exit), never returning here. */
static long clone3_thread(struct clone_args_v0 *ca, void (*fn)(void)) {
    long ret;
    register void (*r12)(void) asm("r12") = fn;
    asm volatile("syscall\n\t"
                 "test %%rax, %%rax\n\t"
                 "jnz 1f\n\t"
                 "xor %%ebp, %%ebp\n\t"
                 "and $-16, %%rsp\n\t"
                 "call *%%r12\n\t"
                 "mov $60, %%eax\n\t"
                 "xor %%edi, %%edi\n\t"
                 "syscall\n\t"
                 "hlt\n\t"
                 "1:"
                 : "=a"(ret)
                 : "a"(435L), "D"(ca), "S"(sizeof *ca), "r"(r12)
                 : "rcx", "r11", "memory");
    return ret;
}

static int case_clone3(void) {
    size_t sz = 1 << 16;
    char *stk = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static volatile pid_t ptid, ctid;
    ctid = -1;
    struct clone_args_v0 ca = {
        .flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                 CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID,
        .child_tid = (uint64_t)(uintptr_t)&ctid,
        .parent_tid = (uint64_t)(uintptr_t)&ptid,
        .stack = (uint64_t)(uintptr_t)stk,
        .stack_size = sz,
    };
    long r = clone3_thread(&ca, c3_child);
    int ok;
    if (r == -ENOSYS) {
        ok = 1; /* a libc falls back to clone; so may we */
    } else if (r < 0) {
        ok = 0;
    } else {
        wait_cleared(&ctid);
        ok = atomic_load(&c3_ran) == r && ptid == r && r != getpid();
    }
    check("clone3", "a thread that ran (or ENOSYS)", ok);
    /* A too-small struct is refused (EINVAL), or clone3 is absent altogether. */
    long e = syscall(435, &ca, 8);
    check("clone3", "size 8: EINVAL or ENOSYS", e == -1 && (errno == EINVAL || errno == ENOSYS));
    return 0;
}

/* ------------------------------------------------------------------ shared fd table, fs */

static int sh_fds[2];
static int sh_closed_ok;
static void *sh_fn(void *arg) {
    int victim = (int)(long)arg;
    if (pipe(sh_fds)) return NULL;
    sh_closed_ok = close(victim) == 0;
    chdir("/usr");
    umask(027);
    return NULL;
}

static int case_shared_fs(void) {
    if (chdir("/")) die("chdir");
    mode_t oldmask = umask(022);
    int victim = open("/dev/null", O_RDONLY);
    pthread_t t = spawn(sh_fn, (void *)(long)victim);
    pthread_join(t, NULL);
    char buf[8] = "";
    int w = (int)write(sh_fds[1], "hi", 2);
    int r = (int)read(sh_fds[0], buf, sizeof buf);
    check("shared_fs", "main uses the pipe a thread made", w == 2 && r == 2 && !memcmp(buf, "hi", 2));
    errno = 0;
    check("shared_fs", "an fd a thread closed is gone for main",
          sh_closed_ok && fcntl(victim, F_GETFD) == -1 && errno == EBADF);
    char cwd[PATH_MAX];
    printf("shared_fs: cwd after the thread's chdir: %s\n", getcwd(cwd, sizeof cwd));
    printf("shared_fs: umask after the thread's: %03o\n", umask(oldmask));
    return 0;
}

/* ------------------------------------------------------------------ pthread_exit */

static atomic_int pe_cleanup;
static void pe_clean(void *arg) {
    (void)arg;
    atomic_fetch_add(&pe_cleanup, 1);
}
static void pe_deep(int n) {
    if (n < 0) return;
    if (n == 0) pthread_exit((void *)7);
    pe_deep(n - 1);
    printf("pthread_exit: returned\n");
}
static void *pe_fn(void *arg) {
    (void)arg;
    pthread_cleanup_push(pe_clean, NULL);
    pe_deep(10);
    pthread_cleanup_pop(0);
    return NULL;
}

static int case_pthread_exit(void) {
    pthread_t t = spawn(pe_fn, NULL);
    void *r;
    pthread_join(t, &r);
    printf("pthread_exit: thread's value %ld, cleanup ran %d; main goes on\n", (long)r,
           atomic_load(&pe_cleanup));
    return 0;
}

static pid_t me_pid;
static void *me_fn(void *arg) {
    ms_sleep(50);
    printf("main_exit: thread alive after main's pthread_exit, getpid same %d, status readable %d\n",
           getpid() == me_pid, status_threads() > 0);
    fflush(stdout);
    if (arg) exit(5);
    return NULL; /* the last thread: the process exits 0 */
}

static int main_exit_case(int code) {
    me_pid = getpid();
    printf("main_exit: main calls pthread_exit\n");
    fflush(stdout);
    spawn(me_fn, code ? (void *)1 : NULL);
    pthread_exit(NULL);
}
static int case_main_exit(void) { return main_exit_case(5); }
static int case_main_exit_last(void) { return main_exit_case(0); }

/* ------------------------------------------------------------------ table */

struct tcase {
    const char *name;
    int (*fn)(void);
};

static const struct tcase cases[] = {
    {"ids", case_ids},
    {"mutex_cond", case_mutex_cond},
    {"mutex_counter", case_mutex_counter},
    {"barrier", case_barrier},
    {"sync_misc", case_sync_misc},
    {"timed", case_timed},
    {"tls", case_tls},
    {"keys", case_keys},
    {"cancel", case_cancel},
    {"detached", case_detached},
    {"pthread_kill", case_pthread_kill},
    {"process_signal", case_process_signal},
    {"sigwait", case_sigwait},
    {"sigmask", case_sigmask},
    {"exit_group", case_exit_group},
    {"exit_group_raw", case_exit_group_raw},
    {"main_returns", case_main_returns},
    {"fatal_signal", case_fatal_signal},
    {"segv_thread", case_segv_thread},
    {"exec_thread", case_exec_thread},
    {"exec_main", case_exec_main},
    {"fork_thread", case_fork_thread},
    {"futex_shared", case_futex_shared},
    {"futex_wake_count", case_futex_wake_count},
    {"pi_mutex", case_pi_mutex},
    {"robust", case_robust},
    {"robust_shared", case_robust_shared},
    {"proc_count", case_proc_count},
    {"sched", case_sched},
    {"join_many", case_join_many},
    {"raw_clone", case_raw_clone},
    {"clone3", case_clone3},
    {"shared_fs", case_shared_fs},
    {"pthread_exit", case_pthread_exit},
    {"main_exit", case_main_exit},
    {"main_exit_last", case_main_exit_last},
};

int main(int argc, char **argv) {
    argv0 = argv[0];
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(WATCHDOG);
    if (argc > 1 && !strcmp(argv[1], "exec_child")) return case_exec_child(argc, argv);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (argc > 1 && !strcmp(argv[1], cases[i].name)) return cases[i].fn();
    if (argc > 1) {
        printf("unknown case %s\n", argv[1]);
        return 2;
    }
    /* Every case, each in a child of its own (which arms its own watchdog). */
    alarm(0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fflush(stdout);
        pid_t c = fork();
        if (c == 0) {
            execl("/proc/self/exe", argv0, cases[i].name, (char *)NULL);
            _exit(127);
        }
        printf("== %s: status %d\n", cases[i].name, wait_child(c));
    }
    return 0;
}
