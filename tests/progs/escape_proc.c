/* escape_proc CASE FIX MODE TESTPID VMMPATH VMMPID — /proc tricks (see escape_common.h).
 * Cases:
 *   maps    symlinks to /proc/self/maps (made now in /tmp, and the fixture's links/maps*):
 *           what they show must be the sandbox's own maps, never vmm's (its binary path, libc,
 *           the memory file);
 *   mem     symlinks to /proc/self/mem: a read at a variable's address gives the variable or
 *           fails; O_RDWR through a symlink fails with --rw; a write, if allowed, changes only
 *           the program's own memory;
 *   environ /proc/1/environ (the sandbox's init: this program) shows this program's
 *           environment or fails; /proc/VMMPID and /proc/TESTPID (host pids) do not exist;
 *   mtab    prints /etc/mtab and /proc/self/mounts as `MOUNT ...` lines (the harness checks
 *           no host mount shows);
 *   magic   `..` and magic-link climbs (/proc/self/root/.., /proc/self/cwd/.., openat of a
 *           directory fd with ../../.., /proc/self/fd/N/..) never leave the root: the secret
 *           in the fixture's sibling directory `outside` is never read. */
#include "escape_common.h"
#include <dirent.h>

extern char **environ;

static const char *maps_needles[] = {"libc.so", "ld-linux", "memfd:", "[vmm", "/vmm ", "vmm (deleted)"};

static int direct_maps_ok = -1;

static void check_maps(const char *name, const char *path) {
    long n = read_file(path);
    if (direct_maps_ok == -1)
        direct_maps_ok = n >= 0;
    else if (n >= 0 && !direct_maps_ok) {
        fail(name, "%s read, but /proc/self/maps itself does not: the link reached another /proc", path);
        return;
    }
    if (n < 0) {
        pass(name, "%s: %s", path, strerror(errno));
        return;
    }
    const char *bad = line_with(filebuf, n, VMMPATH);
    for (unsigned i = 0; !bad && i < sizeof maps_needles / sizeof maps_needles[0]; i++)
        bad = line_with(filebuf, n, maps_needles[i]);
    if (bad)
        fail(name, "%s shows a host mapping: %s", path, bad);
    else
        pass(name, "%s: %ld bytes, the sandbox's own maps", path, n);
}

static int case_maps(void) {
    check_maps("maps-direct", "/proc/self/maps");
    check_maps("maps-fixture-link", fx("/links/maps"));
    check_maps("maps-fixture-rel-link", fx("/links/maps_rel"));
    check_maps("maps-thread-self", "/proc/thread-self/maps");
    if (writable()) {
        unlink("/tmp/escape_m");
        if (symlink("/proc/self/maps", "/tmp/escape_m") == 0)
            check_maps("maps-tmp-link", "/tmp/escape_m");
        else
            fail("maps-tmp-link", "symlink: %s", strerror(errno));
        unlink("/tmp/escape_m");
    }
    return finish();
}

static volatile uint64_t marker = 0x5eedf00dcafe1234ULL;
static volatile uint64_t victim = 0x1111111111111111ULL;

/* Whether /proc/self/mem itself opens: a symlink to it must do no more. */
static int direct_opens = -1;

static void check_mem(const char *name, const char *path, int is_link) {
    char n1[128], n2[128];
    snprintf(n1, sizeof n1, "%s-read", name);
    snprintf(n2, sizeof n2, "%s-rdwr", name);
    int fd = open(path, O_RDONLY);
    if (!is_link)
        direct_opens = fd >= 0;
    if (is_link && fd >= 0 && direct_opens == 0) {
        fail(n1, "%s opened, but /proc/self/mem itself does not: the link reached another /proc", path);
        close(fd);
    } else if (fd < 0) {
        pass(n1, "open %s: %s", path, strerror(errno));
    } else {
        uint64_t v = 0;
        long r = pread(fd, &v, 8, (off_t)(uintptr_t)&marker);
        if (r < 0)
            pass(n1, "pread: %s", strerror(errno));
        else
            check(r == 8 && v == marker, n1, "pread at &marker gave %ld bytes %#llx (want %#llx)", r,
                  (unsigned long long)v, (unsigned long long)marker);
        close(fd);
    }
    fd = open(path, O_RDWR);
    if (fd < 0) {
        pass(n2, "open O_RDWR %s: %s", path, strerror(errno));
        return;
    }
    if (is_link && direct_opens == 0) {
        fail(n2, "%s opened O_RDWR, but /proc/self/mem itself does not open", path);
        close(fd);
        return;
    }
    if (is_link && is_mode("rw")) {
        fail(n2, "open O_RDWR of a symlink to /proc/self/mem succeeded with --rw");
        close(fd);
        return;
    }
    uint64_t nv = 0x2222222222222222ULL;
    long r = pwrite(fd, &nv, 8, (off_t)(uintptr_t)&victim);
    if (r < 0)
        pass(n2, "pwrite: %s", strerror(errno));
    else
        check(r == 8 && victim == nv, n2, "pwrite at &victim returned %ld; victim now %#llx", r,
              (unsigned long long)victim);
    victim = 0x1111111111111111ULL;
    close(fd);
}

static int case_mem(void) {
    check_mem("mem-direct", "/proc/self/mem", 0);
    check_mem("mem-fixture-link", fx("/links/mem"), 1);
    if (writable()) {
        unlink("/tmp/escape_mem");
        if (symlink("/proc/self/mem", "/tmp/escape_mem") == 0)
            check_mem("mem-tmp-link", "/tmp/escape_mem", 1);
        else
            fail("mem-tmp-link", "symlink: %s", strerror(errno));
        unlink("/tmp/escape_mem");
    }
    return finish();
}

static char own_env[1 << 16];
static long own_env_len;

static void check_env_self(const char *name, const char *path) {
    long n = read_file(path);
    if (n < 0) {
        pass(name, "%s: %s", path, strerror(errno));
        return;
    }
    check(n == own_env_len && memcmp(filebuf, own_env, n) == 0, name,
          "%s: %ld bytes, this program's environment has %ld", path, n, own_env_len);
}

static void check_absent(const char *name, const char *path) {
    long n = read_file(path);
    if (n < 0)
        pass(name, "%s: %s", path, strerror(errno));
    else
        fail(name, "%s (a host pid) read %ld bytes: %.80s", path, n, filebuf);
}

static int case_environ(void) {
    for (char **e = environ; *e; e++) {
        size_t l = strlen(*e) + 1;
        if (own_env_len + l > sizeof own_env)
            break;
        memcpy(own_env + own_env_len, *e, l);
        own_env_len += l;
    }
    char p[256];
    if (getpid() == 1) {
        check_env_self("environ-pid1", "/proc/1/environ");
        check_env_self("environ-pid1-link", fx("/links/env1"));
    } else {
        info("environ-pid1", "not init (pid %d)", getpid());
    }
    check_env_self("environ-self", "/proc/self/environ");
    snprintf(p, sizeof p, "/proc/%ld/environ", VMMPID);
    check_absent("environ-vmm", p);
    if (writable()) {
        unlink("/tmp/escape_env");
        if (symlink(p, "/tmp/escape_env") == 0)
            check_absent("environ-vmm-link", "/tmp/escape_env");
        unlink("/tmp/escape_env");
    }
    snprintf(p, sizeof p, "/proc/%ld/cmdline", VMMPID);
    check_absent("cmdline-vmm", p);
    snprintf(p, sizeof p, "/proc/%ld/maps", VMMPID);
    check_absent("maps-vmm", p);
    snprintf(p, sizeof p, "/proc/%ld/environ", TESTPID);
    check_absent("environ-harness", p);
    return finish();
}

static void dump_mounts(const char *name, const char *path) {
    long n = read_file(path);
    if (n < 0) {
        pass(name, "%s: %s", path, strerror(errno));
        return;
    }
    info(name, "%s: %ld bytes", path, n);
    char *s = filebuf;
    while (*s) {
        char *e = strchr(s, '\n');
        if (e)
            *e = 0;
        printf("MOUNT %s\n", s);
        if (!e)
            break;
        s = e + 1;
    }
}

static int case_mtab(void) {
    dump_mounts("mtab", "/etc/mtab");
    dump_mounts("mtab-fixture", fx("/etc/mtab"));
    dump_mounts("mounts", "/proc/self/mounts");
    dump_mounts("mountinfo", "/proc/self/mountinfo");
    return finish();
}

static void no_secret(const char *name, int dirfd, const char *path) {
    int fd = openat(dirfd, path, O_RDONLY);
    if (fd < 0) {
        pass(name, "%s: %s", path, strerror(errno));
        return;
    }
    char b[64] = {0};
    long r = read(fd, b, sizeof b - 1);
    close(fd);
    if (r > 0 && strstr(b, "SECRET-OUTSIDE"))
        fail(name, "%s read the secret outside the root", path);
    else
        pass(name, "%s: opened something inside the root (%ld bytes)", path, r);
}

static int listing(const char *path, char *out, size_t cap) {
    /* Sorted names, joined by spaces. */
    DIR *d = opendir(path);
    if (!d)
        return -1;
    char names[256][64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        snprintf(names[n], 64, "%.63s", e->d_name);
        n++;
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char t[64];
                memcpy(t, names[i], 64);
                memcpy(names[i], names[j], 64);
                memcpy(names[j], t, 64);
            }
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        strncat(out, names[i], cap - strlen(out) - 2);
        strncat(out, " ", cap - strlen(out) - 1);
    }
    return n;
}

static int case_magic(void) {
    /* In the default mode the whole host is the root: `outside` is plainly visible there, so
     * only the fixture modes can hold a secret out of reach. */
    int secret_modes = !is_mode("default");
    if (secret_modes) {
        no_secret("dotdot", AT_FDCWD, "/../outside/secret");
        no_secret("dotdot-deep", AT_FDCWD, "/../../../../outside/secret");
        no_secret("root-dotdot", AT_FDCWD, "/proc/self/root/../outside/secret");
        no_secret("root-dotdot-deep", AT_FDCWD, "/proc/self/root/../../../outside/secret");
        if (chdir("/") == 0)
            no_secret("cwd-dotdot", AT_FDCWD, "/proc/self/cwd/../outside/secret");
        no_secret("link-climb", AT_FDCWD, "/links/out/secret");
        no_secret("link-abs", AT_FDCWD, "/links/outabs/secret");
        int root = open("/", O_RDONLY | O_DIRECTORY);
        int etc = open("/etc", O_RDONLY | O_DIRECTORY);
        no_secret("openat-root", root, "../outside/secret");
        no_secret("openat-etc", etc, "../../outside/secret");
        int up = openat(root, "../../..", O_RDONLY | O_DIRECTORY);
        if (up >= 0) {
            no_secret("openat-up", up, "outside/secret");
            close(up);
        } else {
            pass("openat-up", "../../..: %s", strerror(errno));
        }
        char p[128];
        snprintf(p, sizeof p, "/proc/self/fd/%d/../outside/secret", root);
        no_secret("fd-dotdot", AT_FDCWD, p);
        snprintf(p, sizeof p, "/proc/self/fd/%d/../../outside/secret", etc);
        no_secret("fd-etc-dotdot", AT_FDCWD, p);
        if (etc >= 0 && fchdir(etc) == 0 && chdir("../../../..") == 0) {
            char cwd[256] = "?";
            if (!getcwd(cwd, sizeof cwd))
                snprintf(cwd, sizeof cwd, "(getcwd: %s)", strerror(errno));
            check(strcmp(cwd, "/") == 0, "chdir-dotdot", "cwd after chdir ../../../.. from /etc: %s", cwd);
            no_secret("chdir-dotdot-open", AT_FDCWD, "outside/secret");
        }
        close(root);
        close(etc);
    }
    static char a[16384], b[16384];
    int na = listing("/", a, sizeof a), nb = listing("/proc/self/root/..", b, sizeof b);
    if (nb < 0)
        pass("root-dotdot-listing", "/proc/self/root/..: %s", strerror(errno));
    else
        check(na == nb && strcmp(a, b) == 0, "root-dotdot-listing", "/proc/self/root/.. lists %d entries, / lists %d",
              nb, na);
    nb = listing("/..", b, sizeof b);
    check(na == nb && strcmp(a, b) == 0, "dotdot-listing", "/.. lists %d entries, / lists %d", nb, na);
    char t[256] = {0};
    long r = readlink("/proc/self/root", t, sizeof t - 1);
    if (r < 0)
        pass("root-link", "readlink /proc/self/root: %s", strerror(errno));
    else
        check(strcmp(t, "/") == 0, "root-link", "/proc/self/root -> %s", t);
    return finish();
}

int main(int argc, char **argv) {
    const char *c = setup(argc, argv);
    if (!strcmp(c, "maps"))
        return case_maps();
    if (!strcmp(c, "mem"))
        return case_mem();
    if (!strcmp(c, "environ"))
        return case_environ();
    if (!strcmp(c, "mtab"))
        return case_mtab();
    if (!strcmp(c, "magic"))
        return case_magic();
    return unknown_case(c);
}
