/* procfs: /proc/self tells the truth about this process, and /proc/<pid> about a child
 * (facts that hold natively too). */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int main_in_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[512];
    unsigned long a, b, me = (unsigned long)&main_in_maps;
    int found = 0, stack = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && me >= a && me < b && strstr(line, " r-x"))
            found = 1;
        if (strstr(line, "[stack]"))
            stack = 1;
    }
    fclose(f);
    return found && stack;
}

int main(int argc, char **argv) {
    (void)argc;
    char buf[4096], cwd[4096], real[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    realpath(argv[0], real);
    printf("exe matches: %d\n", !strcmp(buf, real));
    n = readlink("/proc/self/cwd", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("cwd matches: %d\n", !strcmp(buf, getcwd(cwd, sizeof cwd)));
    int fd = open("/proc/self/status", O_RDONLY);
    n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    char want[64];
    snprintf(want, sizeof want, "\nPid:\t%d\n", getpid());
    printf("status has pid: %d\n", strstr(buf, want) != NULL);
    snprintf(want, sizeof want, "\nPPid:\t%d\n", getppid());
    printf("status has ppid: %d\n", strstr(buf, want) != NULL);
    int f = open(real, O_RDONLY);
    snprintf(want, sizeof want, "/proc/self/fd/%d", f);
    n = readlink(want, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("fd link matches: %d\n", !strcmp(buf, real));
    printf("fd dir has it: %d\n", access(want, F_OK) == 0);
    int g = open("/proc/self/comm", O_RDONLY);
    n = read(g, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    const char *base = strrchr(real, '/') + 1;
    char comm[32];
    snprintf(comm, sizeof comm, "%.15s\n", base);
    printf("comm matches: %d\n", !strcmp(buf, comm));
    printf("maps has main and stack: %d\n", main_in_maps());
    printf("missing entry: %d\n", open("/proc/self/nonexistent-entry", O_RDONLY));

    /* Another process of ours: a child waiting in pause(). */
    int ready[2];
    pipe(ready);
    pid_t c = fork();
    if (c == 0) {
        write(ready[1], "r", 1);
        for (;;)
            pause();
    }
    char r;
    read(ready[0], &r, 1);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", c);
    fd = open(path, O_RDONLY);
    n = fd < 0 ? 0 : read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    snprintf(want, sizeof want, "\nPid:\t%d\n", c);
    printf("child status has its pid: %d\n", strstr(buf, want) != NULL);
    snprintf(want, sizeof want, "\nPPid:\t%d\n", getpid());
    printf("child status has our pid as ppid: %d\n", strstr(buf, want) != NULL);
    snprintf(path, sizeof path, "/proc/%d/exe", c);
    n = readlink(path, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("child exe matches: %d\n", !strcmp(buf, real));
    snprintf(path, sizeof path, "/proc/%d/cmdline", c);
    fd = open(path, O_RDONLY);
    n = fd < 0 ? 0 : read(fd, buf, sizeof buf - 1);
    printf("child cmdline is argv: %d\n", n == (ssize_t)strlen(argv[0]) + 1 && !strcmp(buf, argv[0]));
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    fd = open(path, O_RDONLY);
    n = fd < 0 ? 0 : read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    int spid = 0, sppid = 0;
    char st = 0;
    sscanf(buf, "%d %*s %c %d", &spid, &st, &sppid);
    printf("child stat pid/ppid: %d %d\n", spid == c, sppid == getpid());
    int listed = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (atoi(e->d_name) == c)
            listed = 1;
    printf("child listed in /proc: %d\n", listed);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    snprintf(path, sizeof path, "/proc/%d/status", c);
    printf("reaped child gone: %d\n", open(path, O_RDONLY) < 0);
    printf("no such pid: %d\n", open("/proc/999999/status", O_RDONLY));
    return 0;
}
