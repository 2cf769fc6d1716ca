/* procfs: /proc/self tells the truth about this process (facts that hold natively too). */
#include <fcntl.h>
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
    return 0;
}
