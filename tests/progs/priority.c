/* priority: getpriority/setpriority (nice values): set and read back for the process, clamping
 * past 19 and -20, a child inheriting it and being changed by its parent by pid, a process
 * group and the user, bad `which` and missing processes. Prints values and errno names only
 * (never the starting value, which the runner's own nice sets natively). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errname.h"

static void get(const char *what, int which, int who) {
    errno = 0;
    int r = getpriority(which, who);
    if (r == -1 && errno)
        printf("%s: %s\n", what, errno_name(errno));
    else
        printf("%s: %d\n", what, r);
}

int main(void) {
    printf("set 5 %s\n", err(setpriority(PRIO_PROCESS, 0, 5)));
    get("process", PRIO_PROCESS, 0);
    get("by pid", PRIO_PROCESS, getpid());
    printf("set 25 %s\n", err(setpriority(PRIO_PROCESS, 0, 25)));
    get("clamped", PRIO_PROCESS, 0);
    printf("set -30 %s\n", err(setpriority(PRIO_PROCESS, 0, -30)));
    get("clamped", PRIO_PROCESS, 0);
    setpriority(PRIO_PROCESS, 0, 3);
    int go[2], back[2];
    pipe(go);
    pipe(back);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        errno = 0;
        int inherited = getpriority(PRIO_PROCESS, 0);
        char b;
        write(back[1], "r", 1);
        read(go[0], &b, 1);
        int later = getpriority(PRIO_PROCESS, 0);
        printf("child: inherited %d, after the parent set it %d\n", inherited, later);
        fflush(stdout);
        _exit(0);
    }
    char b;
    read(back[0], &b, 1);
    get("child by pid", PRIO_PROCESS, c);
    printf("set the child 7 %s\n", err(setpriority(PRIO_PROCESS, c, 7)));
    write(go[1], "g", 1);
    int st;
    waitpid(c, &st, 0);
    /* Natively other processes share the group and the user: only whether it works. */
    errno = 0;
    getpriority(PRIO_PGRP, 0);
    printf("process group: %s\n", errno ? errno_name(errno) : "ok");
    errno = 0;
    getpriority(PRIO_USER, 0);
    printf("user: %s\n", errno ? errno_name(errno) : "ok");
    /* Its own group: the group of the sandbox's or the runner's processes natively. */
    setpgid(0, 0);
    printf("set the group 4 %s\n", err(setpriority(PRIO_PGRP, 0, 4)));
    get("process", PRIO_PROCESS, 0);
    get("its group", PRIO_PGRP, 0);
    get("bad which", 7, 0);
    printf("set bad which %s\n", err(setpriority(7, 0, 1)));
    get("missing process", PRIO_PROCESS, 999999);
    printf("set missing process %s\n", err(setpriority(PRIO_PROCESS, 999999, 1)));
    get("missing group", PRIO_PGRP, 999999);
    return 0;
}
