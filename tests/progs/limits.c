/* limits MODE ...: the sandbox's limits end in an errno or a signal for the process that hit
 * them, never in the end of the sandbox. Sandbox-only (native runs have other limits):
 *   limits fork        fork children (each waits on a pipe) until fork fails; print how many
 *   limits overlay DIR  grow files in DIR past the overlay's budget (run with --memory 64)
 *   limits touch MIB    map MIB MiB of anonymous memory and touch every page */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int forks(void) {
    int p[2];
    if (pipe(p) != 0)
        return 1;
    int n = 0;
    for (;;) {
        pid_t c = fork();
        if (c < 0) {
            printf("forked %d, then %s\n", n, strerror(errno));
            break;
        }
        if (c == 0) {
            char b;
            close(p[1]);
            read(p[0], &b, 1);
            _exit(0);
        }
        if (++n > 100000)
            break;
    }
    close(p[1]); /* every child's read returns 0 */
    int reaped = 0;
    while (wait(NULL) > 0)
        reaped++;
    printf("reaped %d\n", reaped);
    /* The limit counts what exists: once they are gone, fork works again. */
    pid_t c = fork();
    if (c == 0)
        _exit(7);
    int st = 0;
    waitpid(c, &st, 0);
    printf("fork after reaping: %s, child status %d\n", c > 0 ? "ok" : strerror(errno),
           WEXITSTATUS(st));
    return 0;
}

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, strerror(errno));
    else
        printf("%s: %ld\n", what, r);
}

static int overlay(const char *dir) {
    if (chdir(dir) != 0)
        return 2;
    int fd = open("big", O_CREAT | O_RDWR, 0644);
    /* The overlay is a tmpfs: a file's size costs nothing, only its pages do. */
    show("ftruncate 1 TiB (sparse)", ftruncate(fd, 1L << 40));
    show("pwrite at 1 TiB", pwrite(fd, "x", 1, 1L << 40));
    show("pwrite at 2^63-2", pwrite(fd, "xy", 2, 0x7ffffffffffffffeL));
    show("ftruncate -1", ftruncate(fd, -1));
    static char chunk[1 << 20];
    memset(chunk, 'a', sizeof chunk);
    long total = 0;
    for (int i = 0; i < 256; i++) {
        long n = write(fd, chunk, sizeof chunk);
        if (n < 0) {
            printf("write stopped: %s\n", strerror(errno));
            break;
        }
        total += n;
    }
    printf("wrote at most 64 MiB: %d, over 1 MiB: %d\n", total <= (64L << 20), total > (1L << 20));
    /* A second file cannot take what the first holds... */
    int fd2 = open("big2", O_CREAT | O_RDWR, 0644);
    show("write to big2", write(fd2, "y", 1));
    /* ...not even once unlinked while open... */
    show("unlink big", unlink("big"));
    show("write to big2 while big is open", write(fd2, "y", 1));
    /* ...until it is gone. */
    close(fd);
    show("write 1 MiB to big2 after close", write(fd2, chunk, 1 << 20));
    char b[4];
    show("pread big2", pread(fd2, b, 4, (1 << 20) - 4));
    /* A write from memory that is not there: EFAULT, not an allocation of its length. */
    show("write 1 GiB from a bad pointer", write(fd2, (void *)0x10000, 1L << 30));
    return 0;
}

static int touch(long mib) {
    long len = mib << 20;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        printf("mmap: %s\n", strerror(errno));
        return 0;
    }
    printf("mapped\n");
    fflush(stdout);
    for (long i = 0; i < len; i += 4096)
        p[i] = 1;
    printf("touched all\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 2 && !strcmp(argv[1], "fork"))
        return forks();
    if (argc >= 3 && !strcmp(argv[1], "overlay"))
        return overlay(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "touch"))
        return touch(atol(argv[2]));
    return 2;
}
