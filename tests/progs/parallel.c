// Processes whose app code runs at the same time as other processes' (issue 11): what the
// Sentry must get right while one app runs on its own and another's syscalls are served —
// shared memory between running apps, signals, stops and exits sent to an app that is
// running, timers that fall due while it runs, and a thread that wakes beside a spinning
// sibling. Each case prints what a native run prints; none depends on timing.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile long *shared;

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void report(const char *name, int status) {
    if (WIFEXITED(status))
        printf("%s: exited %d\n", name, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: killed by %d\n", name, WTERMSIG(status));
    else if (WIFSTOPPED(status))
        printf("%s: stopped by %d\n", name, WSTOPSIG(status));
    else if (WIFCONTINUED(status))
        printf("%s: continued\n", name);
    fflush(stdout);
}

// Two children take turns on one shared word without a syscall: each waits for its turn.
static void pingpong(void) {
    enum { ROUNDS = 100 };
    shared[0] = 0;
    for (int me = 0; me < 2; me++) {
        if (fork() == 0) {
            long mine = 0;
            for (int i = 0; i < ROUNDS; i++) {
                while (__atomic_load_n(&shared[0], __ATOMIC_ACQUIRE) % 2 != me) {
                }
                mine++;
                __atomic_fetch_add(&shared[0], 1, __ATOMIC_RELEASE);
            }
            _exit(mine == ROUNDS ? 0 : 1);
        }
    }
    int status, ok = 0;
    while (wait(&status) > 0)
        ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("pingpong: %d children done, word %ld\n", ok, shared[0]);
}

// A child that spins with no syscall is killed from outside while it runs.
static void kill_spinner(void) {
    shared[1] = 0;
    pid_t c = fork();
    if (c == 0) {
        shared[1] = 1;
        for (;;)
            __atomic_fetch_add(&shared[2], 1, __ATOMIC_RELAXED);
    }
    while (!shared[1]) {
    }
    kill(c, SIGKILL);
    int status;
    waitpid(c, &status, 0);
    report("kill_spinner", status);
}

static volatile sig_atomic_t got_term;
static void on_term(int sig) {
    (void)sig;
    got_term = 1;
}

// A spinning child's handler runs on a signal another process sends it.
static void term_handler(void) {
    shared[1] = 0;
    pid_t c = fork();
    if (c == 0) {
        signal(SIGTERM, on_term);
        shared[1] = 1;
        while (!got_term) {
        }
        _exit(7);
    }
    while (!shared[1]) {
    }
    kill(c, SIGTERM);
    int status;
    waitpid(c, &status, 0);
    report("term_handler", status);
}

// A spinning child is stopped (it makes no progress until continued) and continued.
static void stop_cont(void) {
    shared[1] = 0;
    shared[2] = 0;
    pid_t c = fork();
    if (c == 0) {
        shared[1] = 1;
        for (;;)
            __atomic_fetch_add(&shared[2], 1, __ATOMIC_RELAXED);
    }
    while (!shared[1]) {
    }
    int status;
    kill(c, SIGSTOP);
    waitpid(c, &status, WUNTRACED);
    report("stop_cont", status);
    long before = __atomic_load_n(&shared[2], __ATOMIC_RELAXED);
    nap_ms(30);
    long after = __atomic_load_n(&shared[2], __ATOMIC_RELAXED);
    printf("stop_cont: %s while stopped\n", before == after ? "no progress" : "PROGRESS");
    kill(c, SIGCONT);
    waitpid(c, &status, WCONTINUED);
    report("stop_cont", status);
    while (__atomic_load_n(&shared[2], __ATOMIC_RELAXED) == after) {
    }
    printf("stop_cont: progress once continued\n");
    kill(c, SIGKILL);
    waitpid(c, &status, 0);
    report("stop_cont", status);
}

static unsigned long sum_to(unsigned long n) {
    volatile unsigned long s = 0;
    for (unsigned long i = 0; i < n; i++)
        s += i ^ (i >> 3);
    return s;
}

// The parent's syscalls are served while a child computes; both results are right.
static void syscalls_beside(void) {
    int res[2], mine[2];
    if (pipe(res) < 0 || pipe(mine) < 0) {
        perror("pipe");
        return;
    }
    pid_t c = fork();
    if (c == 0) {
        unsigned long s = sum_to(50000000);
        if (write(res[1], &s, sizeof s) != sizeof s)
            _exit(1);
        _exit(0);
    }
    int bad = 0;
    for (int i = 0; i < 3000; i++) {
        char out[16], in[16];
        int n = snprintf(out, sizeof out, "%d", i);
        if (write(mine[1], out, n) != n || read(mine[0], in, sizeof in) != n ||
            memcmp(in, out, n) != 0 || getpid() <= 0)
            bad++;
    }
    unsigned long s = 0;
    if (read(res[0], &s, sizeof s) != sizeof s)
        bad++;
    int status;
    waitpid(c, &status, 0);
    printf("syscalls_beside: %d bad, child sum %s\n", bad,
           s == sum_to(50000000) ? "right" : "WRONG");
    report("syscalls_beside", status);
    close(res[0]);
    close(res[1]);
    close(mine[0]);
    close(mine[1]);
}

// More computing children than CPUs: each finishes with its own result.
static void many(void) {
    pid_t kids[6];
    for (int i = 0; i < 6; i++) {
        kids[i] = fork();
        if (kids[i] == 0)
            _exit((int)(sum_to(10000000 + i) % 251));
    }
    for (int i = 0; i < 6; i++) {
        int status;
        waitpid(kids[i], &status, 0);
        int want = (int)(sum_to(10000000 + i) % 251);
        printf("many: child %d %s\n", i,
               WIFEXITED(status) && WEXITSTATUS(status) == want ? "right" : "WRONG");
    }
}

static void on_alarm(int sig) {
    (void)sig;
    _exit(3);
}

// A timer of the spinning child's own falls due while it runs.
static void alarm_spinner(void) {
    pid_t c = fork();
    if (c == 0) {
        signal(SIGALRM, on_alarm);
        struct itimerval it = {{0, 0}, {0, 30000}};
        setitimer(ITIMER_REAL, &it, NULL);
        for (;;)
            __atomic_fetch_add(&shared[3], 1, __ATOMIC_RELAXED);
    }
    int status;
    waitpid(c, &status, 0);
    report("alarm_spinner", status);
}

static volatile int flag;
static void *setter(void *arg) {
    (void)arg;
    nap_ms(20);
    flag = 1;
    return NULL;
}

// A thread that wakes from a sleep runs beside its spinning sibling (same address space).
static void thread_beside(void) {
    pthread_t t;
    flag = 0;
    pthread_create(&t, NULL, setter, NULL);
    while (!flag) {
    }
    pthread_join(t, NULL);
    printf("thread_beside: the sleeper set the flag\n");
}

// Every child still spinning when the sandbox's init exits is ended with it.
static void exit_beside(void) {
    pid_t c = fork();
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            // It spins until init is about to exit, and a little after (natively it then
            // ends on its own, without the test's output pipe).
            close(1);
            close(2);
            while (!__atomic_load_n(&shared[5], __ATOMIC_ACQUIRE)) {
            }
            sum_to(1000000);
            _exit(0);
        }
        _exit(0);
    }
    int status;
    waitpid(c, &status, 0);
    report("exit_beside", status);
}

int main(int argc, char **argv) {
    shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct {
        const char *name;
        void (*run)(void);
    } cases[] = {
        {"pingpong", pingpong},         {"kill_spinner", kill_spinner},
        {"term_handler", term_handler}, {"stop_cont", stop_cont},
        {"syscalls_beside", syscalls_beside}, {"many", many},
        {"alarm_spinner", alarm_spinner}, {"thread_beside", thread_beside},
        {"exit_beside", exit_beside},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (argc < 2 || strcmp(argv[1], cases[i].name) == 0)
            cases[i].run();
    // exit_beside's grandchild may stop spinning now.
    __atomic_store_n(&shared[5], 1, __ATOMIC_RELEASE);
    return 0;
}
