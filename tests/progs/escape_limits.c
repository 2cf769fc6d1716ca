/* escape_limits CASE FIX MODE TESTPID VMMPATH VMMPID — resource limits (see
 * escape_common.h).
 *   truncate   ftruncate and pwrite at 1 TiB of a file in the overlay make a sparse file (as
 *              tmpfs does; or fail cleanly: EFBIG, ENOSPC, ENOMEM, EINVAL) holding no memory
 *              for its holes: reading them, mapping them privately, a refused shared mapping
 *              of all of it and a refused exec leave the Sentry whole; with --ro the file
 *              cannot be made (EROFS); with --rw the host decides (only reported);
 *   fill       (run with --memory 64) writing 1 MiB blocks to an overlay file ends with
 *              ENOSPC/ENOMEM/EFBIG before 64 MiB were accepted;
 *   mmap1g     (run with --memory 256) a child maps 1 GiB and touches every page: it gets
 *              ENOMEM, or dies of SIGSEGV/SIGBUS, or of SIGKILL as Linux's OOM killer ends a
 *              process over a memory cgroup's limit — it does not succeed;
 *   forkbomb   (run with --pids-limit 20) forks children that wait until fork fails: it fails
 *              with EAGAIN, and 19 or 20 processes existed at the peak (this one included);
 *              prints `HOLD n` and holds them 1.5 s so the harness can count host processes. */
#include "escape_common.h"
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#define TIB (1LL << 40)
#define MIB (1L << 20)

static int clean_errno(int e) { return e == EFBIG || e == ENOSPC || e == ENOMEM || e == EINVAL; }

static int case_truncate(void) {
    const char *p = "/tmp/escape_big";
    unlink(p);
    int fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0755);
    if (is_mode("ro")) {
        check(fd < 0 && errno == EROFS, "create-ro", "open O_CREAT: %s (want EROFS)", fd < 0 ? strerror(errno) : "ok");
        return finish();
    }
    if (fd < 0) {
        fail("create", "open O_CREAT %s: %s", p, strerror(errno));
        return finish();
    }
    int overlay = !is_mode("rw");
    /* The overlay is a tmpfs: a 1 TiB file is sparse (holes hold no memory), as Linux's
     * tmpfs allows; what must never happen is the Sentry holding 1 TiB for it. */
    int r = ftruncate(fd, TIB);
    int e = errno;
    if (overlay)
        check(r == 0 || clean_errno(e), "ftruncate-1tib", "%s", r == 0 ? "sparse" : strerror(e));
    else
        info("ftruncate-1tib", "%s", r == 0 ? "ok" : strerror(e));
    long w = pwrite(fd, "x", 1, TIB);
    e = errno;
    if (overlay)
        check(w == 1 || clean_errno(e), "pwrite-1tib", "%s", w == 1 ? "one page" : strerror(e));
    else
        info("pwrite-1tib", "%s", w >= 0 ? "ok" : strerror(e));
    w = pwrite(fd, "x", 1, 0x7fffffffffffffffLL);
    e = errno;
    check(w < 0, "pwrite-max", "pwrite at 2^63-1: %s", w < 0 ? strerror(e) : "accepted");
    struct stat st;
    if (fstat(fd, &st) == 0 && overlay)
        check(st.st_blocks <= 16, "blocks", "st_size %lld holds %lld blocks", (long long)st.st_size,
              (long long)st.st_blocks);
    if (overlay) {
        char b[4096];
        memset(b, 1, sizeof b);
        long n = pread(fd, b, sizeof b, TIB / 2);
        check(n == (long)sizeof b && b[0] == 0 && b[4095] == 0, "read-hole", "pread in a hole: %ld", n);
        /* Mapping the holes privately costs nothing until touched; a shared mapping of all of
         * it would need every page (ENOMEM), never the Sentry's memory. */
        char *m = mmap(NULL, 1L << 30, PROT_READ, MAP_PRIVATE, fd, TIB - (1L << 30));
        e = errno;
        check(m != MAP_FAILED || clean_errno(e), "mmap-private-1g", "%s",
              m != MAP_FAILED ? "mapped" : strerror(e));
        if (m != MAP_FAILED) {
            check(m[0] == 0 && m[(1L << 30) - 1] == 0, "mmap-private-read", "holes read as zero");
            munmap(m, 1L << 30);
        }
        m = mmap(NULL, TIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        e = errno;
        check(m == MAP_FAILED && clean_errno(e), "mmap-shared-1tib", "%s",
              m == MAP_FAILED ? strerror(e) : "mapped");
        /* Running it: the image is read whole, so it is refused, cleanly. */
        close(fd);
        fd = -1;
        pid_t pid = fork();
        if (pid == 0) {
            char *argv[] = {(char *)p, NULL};
            execv(p, argv);
            _exit(errno == 0 ? 1 : 100);
        }
        int ws = 0;
        waitpid(pid, &ws, 0);
        check(WIFEXITED(ws) && WEXITSTATUS(ws) == 100, "exec-1tib", "exec of the sparse file fails (status %#x)", ws);
    }
    if (fd >= 0)
        close(fd);
    unlink(p);
    return finish();
}

static int case_fill(void) {
    const char *p = "/tmp/escape_fill";
    unlink(p);
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (is_mode("ro")) {
        check(fd < 0 && errno == EROFS, "create-ro", "open O_CREAT: %s (want EROFS)", fd < 0 ? strerror(errno) : "ok");
        return finish();
    }
    if (is_mode("rw")) {
        info("fill", "--rw writes to the host: not an overlay limit");
        if (fd >= 0)
            close(fd);
        unlink(p);
        return finish();
    }
    if (fd < 0) {
        fail("create", "open O_CREAT %s: %s", p, strerror(errno));
        return finish();
    }
    static char block[MIB];
    memset(block, 'f', sizeof block);
    long total = 0;
    int e = 0;
    while (total < 160 * MIB) {
        long w = write(fd, block, sizeof block);
        if (w < 0) {
            e = errno;
            break;
        }
        if (w == 0)
            break;
        total += w;
    }
    if (total >= 64 * MIB)
        fail("fill-64m", "the overlay accepted %ld MiB under --memory 64 (%s)", total / MIB, e ? strerror(e) : "no error");
    else
        check(e == ENOSPC || e == ENOMEM || e == EFBIG, "fill-64m", "stopped after %ld MiB with %s", total / MIB,
              e ? strerror(e) : "a short write");
    close(fd);
    check(unlink(p) == 0, "unlink", "%s", strerror(errno));
    /* The space comes back: a small file can be written again. */
    fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    check(fd >= 0 && write(fd, block, 4096) == 4096, "reuse", "a 4 KiB file after unlink: %s", fd >= 0 ? "ok" : strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(p);
    return finish();
}

static int case_mmap1g(void) {
    pid_t pid = fork();
    if (pid < 0) {
        fail("fork", "%s", strerror(errno));
        return finish();
    }
    if (pid == 0) {
        size_t len = 1UL << 30;
        unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            _exit(errno == ENOMEM ? 10 : 11);
        for (size_t i = 0; i < len; i += 4096)
            m[i] = 1;
        _exit(12);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 10)
        pass("mmap1g", "mmap: ENOMEM");
    else if (WIFSIGNALED(st) &&
             (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS || WTERMSIG(st) == SIGKILL))
        pass("mmap1g", "the child died of signal %d touching the pages", WTERMSIG(st));
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 12)
        fail("mmap1g", "1 GiB mapped and touched under --memory 256");
    else if (WIFEXITED(st))
        fail("mmap1g", "mmap failed with an errno other than ENOMEM (child exit %d)", WEXITSTATUS(st));
    else
        fail("mmap1g", "the child died of signal %d (want SIGSEGV/SIGBUS/SIGKILL)", WTERMSIG(st));
    return finish();
}

static int case_forkbomb(void) {
    int pfd[2];
    if (pipe(pfd) != 0) {
        fail("pipe", "%s", strerror(errno));
        return finish();
    }
    int n = 0, e = 0;
    pid_t kids[256];
    while (n < 200) {
        pid_t p = fork();
        if (p < 0) {
            e = errno;
            break;
        }
        if (p == 0) {
            char c;
            close(pfd[1]);
            while (read(pfd[0], &c, 1) < 0 && errno == EINTR)
                ;
            _exit(0);
        }
        kids[n++] = p;
    }
    printf("HOLD %d\n", n + 1);
    fflush(stdout);
    struct timespec ts = {1, 500000000};
    nanosleep(&ts, NULL);
    close(pfd[1]);
    for (int i = 0; i < n; i++)
        waitpid(kids[i], NULL, 0);
    if (n == 200)
        fail("forkbomb-eagain", "200 forks succeeded: no limit");
    else
        check(e == EAGAIN, "forkbomb-eagain", "fork failed after %d children with %s (want EAGAIN)", n, strerror(e));
    check(n + 1 >= 19 && n + 1 <= 20, "forkbomb-count", "%d processes at the peak (want 19 or 20 under --pids-limit 20)",
          n + 1);
    /* The limit is not a leak: after the children are reaped, fork works again. */
    pid_t p = fork();
    if (p == 0)
        _exit(7);
    int st = 0;
    check(p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 7, "forkbomb-after",
          "fork after reaping: %s", p > 0 ? "ok" : strerror(errno));
    return finish();
}

int main(int argc, char **argv) {
    const char *c = setup(argc, argv);
    if (!strcmp(c, "truncate"))
        return case_truncate();
    if (!strcmp(c, "fill"))
        return case_fill();
    if (!strcmp(c, "mmap1g"))
        return case_mmap1g();
    if (!strcmp(c, "forkbomb"))
        return case_forkbomb();
    return unknown_case(c);
}
