/* locks: advisory locks between processes, compared with Linux. POSIX record locks
 * (F_SETLK/F_SETLKW/F_GETLK: ranges, read/write sharing, splitting, release at any close of
 * the file and at exit), OFD locks (owned by the open file description, shared across fork),
 * flock (shared/exclusive, per description, LOCK_NB), lockf, the errors, and an execve that
 * closes a close-on-exec descriptor (its file's locks go; a file kept open keeps them). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char path[64];

static const char *err(int r) { return r == 0 ? "ok" : strerror(errno); }

static int lk(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

static void getlk(const char *who, int fd, int cmd, short type, off_t start, off_t len,
                  pid_t holder) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, cmd, &fl) != 0) {
        printf("%s: getlk %s\n", who, strerror(errno));
        return;
    }
    if (fl.l_type == F_UNLCK) {
        printf("%s: getlk [%ld,+%ld): unlocked\n", who, (long)start, (long)len);
        return;
    }
    printf("%s: getlk [%ld,+%ld): %s lock at %ld len %ld, holder %s\n", who, (long)start,
           (long)len, fl.l_type == F_WRLCK ? "write" : "read", (long)fl.l_start, (long)fl.l_len,
           fl.l_pid == holder ? "the parent" : fl.l_pid == -1 ? "-1 (a description)" : "other");
}

/* Runs `f` in a child and waits for it (its output comes before the parent's next line). */
static void in_child(void (*f)(int), int fd) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        f(fd);
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
}

static pid_t parent;

static void child_records(int inherited) {
    (void)inherited;
    int fd = open(path, O_RDWR);
    printf("child: overlapping write lock: %s\n", err(lk(fd, F_SETLK, F_WRLCK, 5, 1)));
    getlk("child", fd, F_GETLK, F_WRLCK, 5, 1, parent);
    printf("child: a free range: %s\n", err(lk(fd, F_SETLK, F_WRLCK, 20, 10)));
    printf("child: read lock in the read-locked range: %s\n",
           err(lk(fd, F_SETLK, F_RDLCK, 150, 10)));
    printf("child: write lock there: %s\n", err(lk(fd, F_SETLK, F_WRLCK, 150, 10)));
    getlk("child", fd, F_GETLK, F_WRLCK, 40, 20, parent);
    getlk("child", fd, F_GETLK, F_WRLCK, 50, 0, parent);
}

static void child_after_close(int inherited) {
    (void)inherited;
    int fd = open(path, O_RDWR);
    printf("child: after the parent closed another descriptor: %s\n",
           err(lk(fd, F_SETLK, F_WRLCK, 0, 0)));
}

static void child_waits(int inherited) {
    (void)inherited;
    int fd = open(path, O_RDWR);
    printf("child: F_SETLK: %s\n", err(lk(fd, F_SETLK, F_WRLCK, 0, 1)));
    fflush(stdout);
    printf("child: F_SETLKW: %s (after the parent let go)\n", err(lk(fd, F_SETLKW, F_WRLCK, 0, 1)));
}

static void child_exits_holding(int inherited) {
    (void)inherited;
    int fd = open(path, O_RDWR);
    printf("child: locks and exits: %s\n", err(lk(fd, F_SETLK, F_WRLCK, 0, 0)));
}

static void child_ofd(int inherited) {
    int fd = open(path, O_RDWR);
    printf("child: OFD lock on its own description: %s\n", err(lk(fd, F_OFD_SETLK, F_WRLCK, 0, 1)));
    getlk("child", fd, F_OFD_GETLK, F_WRLCK, 0, 1, parent);
    printf("child: POSIX lock against it: %s\n", err(lk(fd, F_SETLK, F_WRLCK, 0, 1)));
    printf("child: OFD lock on the inherited description: %s\n",
           err(lk(inherited, F_OFD_SETLK, F_WRLCK, 0, 1)));
}

static void child_flock(int inherited) {
    int fd = open(path, O_RDWR);
    printf("child: LOCK_EX|LOCK_NB on its own open: %s\n", err(flock(fd, LOCK_EX | LOCK_NB)));
    printf("child: LOCK_SH|LOCK_NB on its own open: %s\n", err(flock(fd, LOCK_SH | LOCK_NB)));
    printf("child: LOCK_EX on the inherited description: %s\n",
           err(flock(inherited, LOCK_EX | LOCK_NB)));
    printf("child: POSIX lock beside the flock: %s\n", err(lk(fd, F_SETLK, F_WRLCK, 0, 0)));
}

static void child_flock_shared(int inherited) {
    (void)inherited;
    int fd = open(path, O_RDWR);
    printf("child: LOCK_SH beside a shared one: %s\n", err(flock(fd, LOCK_SH | LOCK_NB)));
    printf("child: LOCK_EX beside it: %s\n", err(flock(fd, LOCK_EX | LOCK_NB)));
    printf("child: lockf F_TEST of a free file: %s\n", err(lockf(fd, F_TEST, 0)));
}

static void child_lockf(int inherited) {
    (void)inherited;
    int fd = open(path, O_RDWR);
    printf("child: lockf F_TEST: %s\n", err(lockf(fd, F_TEST, 10)));
    printf("child: lockf F_TLOCK: %s\n", err(lockf(fd, F_TLOCK, 10)));
    lseek(fd, 10, SEEK_SET);
    printf("child: lockf F_TLOCK after them: %s\n", err(lockf(fd, F_TLOCK, 10)));
}

/* After the exec (argv: "after-exec", the closed file, the kept one): a child looks. */
static int after_exec(char **argv) {
    parent = getpid();
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int a = open(argv[2], O_RDWR), b = open(argv[3], O_RDWR);
        getlk("after exec, the close-on-exec file", a, F_GETLK, F_WRLCK, 0, 1, parent);
        getlk("after exec, the file kept open", b, F_GETLK, F_WRLCK, 0, 1, parent);
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    unlink(argv[2]);
    unlink(argv[3]);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "after-exec") == 0)
        return after_exec(argv);
    parent = getpid();
    snprintf(path, sizeof path, "/tmp/vmm-locks-%d", getpid());
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "0123456789", 10) != 10) {
        perror(path);
        return 1;
    }
    printf("write lock [0,10): %s\n", err(lk(fd, F_SETLK, F_WRLCK, 0, 10)));
    printf("read lock [100,200): %s\n", err(lk(fd, F_SETLK, F_RDLCK, 100, 100)));
    printf("write lock [50,eof): %s\n", err(lk(fd, F_SETLK, F_WRLCK, 50, 0)));
    printf("unlock [60,70) (splits it): %s\n", err(lk(fd, F_SETLK, F_UNLCK, 60, 10)));
    getlk("parent (own locks never conflict)", fd, F_GETLK, F_WRLCK, 0, 0, parent);
    in_child(child_records, fd);
    struct flock whence = {.l_type = F_WRLCK, .l_whence = SEEK_END, .l_start = -2, .l_len = 2};
    printf("SEEK_END-relative lock: %s\n", err(fcntl(fd, F_SETLK, &whence)));

    /* Any close of the file by the process drops its POSIX locks. */
    int other = open(path, O_RDONLY);
    close(other);
    in_child(child_after_close, fd);
    close(fd);

    /* F_SETLKW waits for the holder. */
    fd = open(path, O_RDWR);
    lk(fd, F_SETLK, F_WRLCK, 0, 1);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        child_waits(fd);
        fflush(stdout);
        _exit(0);
    }
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    printf("parent: unlocking\n");
    lk(fd, F_SETLK, F_UNLCK, 0, 1);
    waitpid(c, NULL, 0);

    /* A process's exit drops its locks. */
    in_child(child_exits_holding, fd);
    printf("after the child exited: %s\n", err(lk(fd, F_SETLK, F_WRLCK, 0, 0)));
    lk(fd, F_SETLK, F_UNLCK, 0, 0);

    /* OFD locks belong to the description. */
    printf("OFD lock: %s\n", err(lk(fd, F_OFD_SETLK, F_WRLCK, 0, 1)));
    in_child(child_ofd, fd);
    lk(fd, F_OFD_SETLK, F_UNLCK, 0, 1);

    /* flock: per description, shared or exclusive, apart from record locks. */
    printf("flock LOCK_EX: %s\n", err(flock(fd, LOCK_EX)));
    in_child(child_flock, fd);
    printf("flock LOCK_SH (converts): %s\n", err(flock(fd, LOCK_SH)));
    in_child(child_flock_shared, fd);
    printf("flock LOCK_UN: %s\n", err(flock(fd, LOCK_UN)));

    /* A blocking flock waits for the holder, here until it closes its descriptor. */
    int holder = open(path, O_RDWR);
    flock(holder, LOCK_EX);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        close(holder); /* its copy would keep the description, and the lock, alive */
        int mine = open(path, O_RDWR);
        printf("child: flock LOCK_EX (waits): %s\n", err(flock(mine, LOCK_EX)));
        fflush(stdout);
        _exit(0);
    }
    nanosleep(&ts, NULL);
    printf("parent: closing the holder\n");
    fflush(stdout);
    close(holder);
    waitpid(c, NULL, 0);

    /* lockf: POSIX locks from the file position. */
    lseek(fd, 0, SEEK_SET);
    printf("lockf F_LOCK 10: %s\n", err(lockf(fd, F_LOCK, 10)));
    in_child(child_lockf, fd);

    /* Errors. */
    int ro = open(path, O_RDONLY);
    printf("write lock on a read-only descriptor: %s\n", err(lk(ro, F_SETLK, F_WRLCK, 0, 1)));
    printf("bad l_type: %s\n", err(lk(fd, F_SETLK, 7, 0, 1)));
    struct flock neg = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = -5, .l_len = 1};
    printf("negative start: %s\n", err(fcntl(fd, F_SETLK, &neg)));
    struct flock pid = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_pid = 1};
    printf("OFD lock with l_pid: %s\n", err(fcntl(fd, F_OFD_SETLK, &pid)));
    printf("flock bad operation: %s\n", err(flock(fd, 0)));
    printf("flock of a bad descriptor: %s\n", err(flock(99, LOCK_EX)));
    unlink(path);

    /* execve closes close-on-exec descriptors: the process's locks on their files go. */
    char closed[80], kept[80];
    snprintf(closed, sizeof closed, "%s-cloexec", path);
    snprintf(kept, sizeof kept, "%s-kept", path);
    int cfd = open(closed, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
    int kfd = open(kept, O_CREAT | O_RDWR | O_TRUNC, 0600);
    printf("lock the close-on-exec file: %s\n", err(lk(cfd, F_SETLK, F_WRLCK, 0, 1)));
    printf("lock the file kept open: %s\n", err(lk(kfd, F_SETLK, F_WRLCK, 0, 1)));
    fflush(stdout);
    char *args[] = {argv[0], "after-exec", closed, kept, NULL};
    execv("/proc/self/exe", args);
    perror("execv");
    return 1;
}
