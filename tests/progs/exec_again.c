/* exec_again: a program that changes its own data, bss and heap and then execs itself (and,
 * from a forked child, execs itself again) must start each time from the pristine image, as
 * loaded from the file: images kept between execs (guest-sentry/src/image_cache.rs) share
 * their frames copy-on-write and never take a process's writes. Stable output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int counter = 42;
static char bss[8192];
static const char message[] = "read-only data";

int main(int argc, char **argv) {
    int round = argc > 1 ? atoi(argv[1]) : 0;
    printf("round %d: counter %d bss %d %d message %s\n", round, counter, bss[100], bss[8000],
           message);
    counter += 1000;
    bss[100] = 7;
    bss[8000] = 9;
    if (round >= 4)
        return 0;
    char next[16];
    snprintf(next, sizeof next, "%d", round + 1);
    fflush(stdout);
    if (round % 2 == 1) {
        pid_t c = fork();
        if (c == 0) {
            counter = -1;
            execl("/proc/self/exe", argv[0], next, (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(c, &st, 0);
        printf("round %d: child exited %d, counter here %d\n", round, WEXITSTATUS(st), counter);
        return 0;
    }
    execl("/proc/self/exe", argv[0], next, (char *)NULL);
    perror("execl");
    return 1;
}
