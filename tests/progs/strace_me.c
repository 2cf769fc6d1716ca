/* A fixed sequence of syscalls for the --strace tests: each is made with syscall(2) so that
 * its arguments are the same under every C library. argv[1]: a file of at least 11 bytes to
 * open and read (default /etc/passwd). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ksigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

static void on_int(int sig) { (void)sig; }

int main(int argc, char **argv) {
    char buf[64];
    const char *path = argc > 1 ? argv[1] : "/etc/passwd";
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 1;
    if (syscall(SYS_read, fd, buf, 11) != 11) return 2;
    syscall(SYS_close, fd);
    struct ksigaction sa = {on_int, SA_RESTART, 0, 0};
    if (syscall(SYS_rt_sigaction, SIGINT, &sa, 0, 8) != 0) return 3;
    if (syscall(SYS_openat, AT_FDCWD, "/nonexistent/x", O_WRONLY | O_CREAT | O_TRUNC, 0644) != -1)
        return 4;
    void *p = (void *)syscall(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 5;
    syscall(SYS_write, 1, "done\n", 5);
    syscall(SYS_exit_group, 0);
    return 6;
}
