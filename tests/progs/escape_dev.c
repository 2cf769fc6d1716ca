/* escape_dev CASE FIX MODE TESTPID VMMPATH VMMPID — host devices (see escape_common.h).
 * Case `devices`: /dev/kmsg, /dev/vcs, /dev/cpu/0/cpuid, /dev/hwrng, /dev/mem, /dev/port —
 * opened directly, through the fixture's symlinks to them (links/dev_*), through symlinks
 * made now in /tmp, and as device nodes the harness made in the fixture (devnodes/NAME, host
 * nodes with the host's major/minor numbers) — must all fail to open. */
#include "escape_common.h"

static const char *devs[][2] = {
    {"kmsg", "/dev/kmsg"}, {"vcs", "/dev/vcs"}, {"cpuid", "/dev/cpu/0/cpuid"},
    {"hwrng", "/dev/hwrng"}, {"mem", "/dev/mem"}, {"port", "/dev/port"},
};

static void refused(const char *name, const char *path) {
    for (int flags = 0; flags < 2; flags++) {
        int fd = open(path, (flags ? O_WRONLY : O_RDONLY) | O_NONBLOCK);
        char n[128];
        snprintf(n, sizeof n, "%s-%s", name, flags ? "write" : "read");
        if (fd < 0) {
            pass(n, "%s: %s", path, strerror(errno));
        } else {
            char b[16];
            long r = flags ? -2 : read(fd, b, sizeof b);
            fail(n, "%s opened (fd %d, read gave %ld)", path, fd, r);
            close(fd);
        }
    }
}

static int case_devices(void) {
    char name[128], path[512];
    for (unsigned i = 0; i < sizeof devs / sizeof devs[0]; i++) {
        snprintf(name, sizeof name, "%s-direct", devs[i][0]);
        refused(name, devs[i][1]);
        snprintf(name, sizeof name, "%s-fixture-link", devs[i][0]);
        snprintf(path, sizeof path, "%s/links/dev_%s", FIX, devs[i][0]);
        refused(name, path);
        snprintf(name, sizeof name, "%s-fixture-node", devs[i][0]);
        snprintf(path, sizeof path, "%s/devnodes/%s", FIX, devs[i][0]);
        refused(name, path);
        if (writable()) {
            snprintf(path, sizeof path, "/tmp/escape_dev_%s", devs[i][0]);
            unlink(path);
            snprintf(name, sizeof name, "%s-tmp-link", devs[i][0]);
            if (symlink(devs[i][1], path) == 0)
                refused(name, path);
            else
                fail(name, "symlink: %s", strerror(errno));
            unlink(path);
        }
    }
    return finish();
}

int main(int argc, char **argv) {
    const char *c = setup(argc, argv);
    if (!strcmp(c, "devices"))
        return case_devices();
    return unknown_case(c);
}
