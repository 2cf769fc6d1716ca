/* escape_sys CASE FIX MODE TESTPID VMMPATH VMMPID [PATH] — privileged and host-reaching
 * syscalls (see escape_common.h).
 *   mknod       character and block device nodes cannot be made (EPERM; EROFS with --ro);
 *   namespaces  mount, umount2, unshare, pivot_root fail with EPERM or ENOSYS; chroot fails
 *               so, or stays confined (checked in a child);
 *   hostpids    kill, tgkill, ptrace(PTRACE_ATTACH), process_vm_readv, pidfd_open of vmm's
 *               and the harness's host pids fail (no such process in the sandbox); of pid 1
 *               (this program, the sandbox's init) they fail or act on this program only;
 *   newapis     io_uring_setup, bpf, perf_event_open, userfaultfd fail with ENOSYS or EPERM;
 *               iopl, ioperm, init_module, kexec_load, syslog, open_by_handle_at,
 *               name_to_handle_at fail; none returns a file descriptor;
 *   int80       `int $0x80` with eax=39 (i386 mkdir) of PATH returns -ENOSYS and PATH does not
 *               appear (the harness also checks the host). */
#include "escape_common.h"
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sched.h>

static int errno_is(int e, int a, int b) { return e == a || e == b; }

static int case_mknod(void) {
    const char *p = "/tmp/escape_node";
    struct {
        const char *name;
        mode_t mode;
        dev_t dev;
    } n[] = {
        {"mknod-chr-mem", S_IFCHR | 0666, makedev(1, 1)},
        {"mknod-chr-kmsg", S_IFCHR | 0666, makedev(1, 11)},
        {"mknod-blk", S_IFBLK | 0666, makedev(8, 0)},
    };
    for (unsigned i = 0; i < sizeof n / sizeof n[0]; i++) {
        unlink(p);
        int r = mknod(p, n[i].mode, n[i].dev);
        if (r == 0) {
            int fd = open(p, O_RDONLY | O_NONBLOCK);
            fail(n[i].name, "mknod succeeded (open of the node: %s)", fd >= 0 ? "opened" : strerror(errno));
            if (fd >= 0)
                close(fd);
            unlink(p);
        } else {
            int e = errno;
            check(e == EPERM || (is_mode("ro") && e == EROFS), n[i].name, "%s (want EPERM)", strerror(e));
        }
        r = mknodat(AT_FDCWD, fx("/tmp/escape_node2"), n[i].mode, n[i].dev);
        char nm[128];
        snprintf(nm, sizeof nm, "%s-fixture", n[i].name);
        if (r == 0) {
            fail(nm, "mknodat in the fixture succeeded");
            unlink(fx("/tmp/escape_node2"));
        } else {
            pass(nm, "%s", strerror(errno));
        }
    }
    return finish();
}

static void eperm_or_enosys(const char *name, long r) {
    int e = errno;
    if (r >= 0)
        fail(name, "succeeded (%ld)", r);
    else
        check(errno_is(e, EPERM, ENOSYS), name, "%s (want EPERM or ENOSYS)", strerror(e));
}

static int case_namespaces(void) {
    eperm_or_enosys("mount-tmpfs", mount("none", "/tmp", "tmpfs", 0, NULL));
    eperm_or_enosys("mount-bind", mount("/", "/tmp", NULL, MS_BIND | MS_REC, NULL));
    eperm_or_enosys("mount-remount", mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
    eperm_or_enosys("umount-root", umount2("/", MNT_DETACH));
    eperm_or_enosys("umount-proc", umount2("/proc", MNT_DETACH));
    eperm_or_enosys("unshare-mnt", unshare(CLONE_NEWNS));
    eperm_or_enosys("unshare-user", unshare(CLONE_NEWUSER));
    eperm_or_enosys("unshare-pid-net", unshare(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC));
    eperm_or_enosys("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
    eperm_or_enosys("setns", syscall(SYS_setns, 0, CLONE_NEWNS));
    pid_t p = fork();
    if (p == 0) {
        /* 0: refused as wanted; 1: confined; 2: refused wrongly; 3: escaped */
        if (chroot("/tmp") != 0)
            _exit(errno_is(errno, EPERM, ENOSYS) ? 0 : 2);
        if (chdir("/") != 0)
            _exit(1);
        int fd = open("/../../../etc/hostname", O_RDONLY);
        int fd2 = open(fx("/etc/hostname"), O_RDONLY);
        _exit(fd >= 0 || fd2 >= 0 ? 3 : 1);
    }
    int st = 0;
    waitpid(p, &st, 0);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
    check(code == 0 || code == 1, "chroot", "%s",
          code == 0   ? "refused (EPERM/ENOSYS)"
          : code == 1 ? "succeeded and stayed confined"
          : code == 2 ? "refused with an errno other than EPERM/ENOSYS"
          : code == 3 ? "files outside the new root were reachable"
                      : "the child died of a signal");
    return finish();
}

static volatile uint64_t marker = 0xabad1deadeadbeefULL;

static void not_there(const char *name, long pid) {
    char n[128];
    snprintf(n, sizeof n, "%s-kill0", name);
    long r = kill(pid, 0);
    check(r < 0 && errno == ESRCH, n, "kill(%ld, 0): %s (want ESRCH)", pid, r < 0 ? strerror(errno) : "ok");
    snprintf(n, sizeof n, "%s-tgkill", name);
    r = syscall(SYS_tgkill, pid, pid, 0);
    check(r < 0, n, "tgkill(%ld, %ld, 0): %s", pid, pid, r < 0 ? strerror(errno) : "ok");
    snprintf(n, sizeof n, "%s-ptrace", name);
    r = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, pid, 0, 0);
    check(r < 0, n, "ptrace(ATTACH, %ld): %s", pid, r < 0 ? strerror(errno) : "ok");
    snprintf(n, sizeof n, "%s-seize", name);
    r = syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, pid, 0, 0);
    check(r < 0, n, "ptrace(SEIZE, %ld): %s", pid, r < 0 ? strerror(errno) : "ok");
    uint64_t v = 0;
    struct iovec l = {&v, 8}, rm = {(void *)&marker, 8};
    snprintf(n, sizeof n, "%s-vm_readv", name);
    r = syscall(SYS_process_vm_readv, pid, &l, 1, &rm, 1, 0);
    check(r < 0, n, "process_vm_readv(%ld): %s", pid, r < 0 ? strerror(errno) : "read");
    snprintf(n, sizeof n, "%s-vm_writev", name);
    r = syscall(SYS_process_vm_writev, pid, &l, 1, &rm, 1, 0);
    check(r < 0, n, "process_vm_writev(%ld): %s", pid, r < 0 ? strerror(errno) : "written");
    snprintf(n, sizeof n, "%s-pidfd_open", name);
    r = syscall(SYS_pidfd_open, pid, 0);
    check(r < 0, n, "pidfd_open(%ld): %s", pid, r < 0 ? strerror(errno) : "got an fd");
    if (r >= 0)
        close(r);
    snprintf(n, sizeof n, "%s-kill", name);
    /* SIGCONT: harmless to any host process should it get through, but not a success. */
    r = kill(pid, SIGCONT);
    check(r < 0 && errno == ESRCH, n, "kill(%ld, SIGCONT): %s", pid, r < 0 ? strerror(errno) : "delivered");
}

static int case_hostpids(void) {
    not_there("vmm", VMMPID);
    not_there("harness", TESTPID);
    /* vmm's own pid with SIGKILL: if this reached the host, vmm would not exit with our status. */
    long r = kill(VMMPID, SIGKILL);
    check(r < 0 && errno == ESRCH, "vmm-sigkill", "kill(vmm, SIGKILL): %s", r < 0 ? strerror(errno) : "delivered");
    if (getpid() == 1) {
        uint64_t v = 0;
        struct iovec l = {&v, 8}, rm = {(void *)&marker, 8};
        r = syscall(SYS_process_vm_readv, 1, &l, 1, &rm, 1, 0);
        if (r < 0)
            pass("pid1-vm_readv", "%s", strerror(errno));
        else
            check(r == 8 && v == marker, "pid1-vm_readv", "read %ld bytes %#llx from pid 1 (this program: %#llx)", r,
                  (unsigned long long)v, (unsigned long long)marker);
        r = syscall(SYS_ptrace, 16, 1, 0, 0);
        check(r < 0, "pid1-ptrace", "ptrace(ATTACH, 1) of itself: %s", r < 0 ? strerror(errno) : "ok");
        check(kill(1, 0) == 0, "pid1-kill0", "kill(1, 0) reaches this program: %s", strerror(errno));
    } else {
        info("pid1", "not init (pid %d)", getpid());
    }
    return finish();
}

static void no_fd(const char *name, long r, int strict) {
    int e = errno;
    if (r >= 0) {
        fail(name, "succeeded (%ld)", r);
        if (r > 2 && r < 1024)
            close(r);
    } else if (strict) {
        check(errno_is(e, ENOSYS, EPERM), name, "%s (want ENOSYS or EPERM)", strerror(e));
    } else {
        pass(name, "%s", strerror(e));
    }
}

static int case_newapis(void) {
    static unsigned char params[120], attr[256], handle[128];
    no_fd("io_uring_setup", syscall(SYS_io_uring_setup, 8, params), 1);
    /* BPF_PROG_LOAD of an empty socket filter program. */
    memset(attr, 0, sizeof attr);
    no_fd("bpf-prog-load", syscall(SYS_bpf, 5, attr, 128), 1);
    no_fd("bpf-map-create", syscall(SYS_bpf, 0, attr, 128), 1);
    /* perf_event_open of a software CPU clock counter for this process. */
    memset(attr, 0, sizeof attr);
    attr[0] = 1;                 /* type PERF_TYPE_SOFTWARE */
    *(uint32_t *)(attr + 4) = 128; /* size */
    no_fd("perf_event_open", syscall(SYS_perf_event_open, attr, 0, -1, -1, 0), 1);
    no_fd("userfaultfd", syscall(SYS_userfaultfd, 0), 1);
    no_fd("iopl", syscall(SYS_iopl, 3), 0);
    no_fd("ioperm", syscall(SYS_ioperm, 0x80, 1, 1), 0);
    no_fd("init_module", syscall(SYS_init_module, attr, 16, ""), 0);
    no_fd("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0), 0);
    static char logbuf[4096];
    long r = syscall(SYS_syslog, 3 /* READ_ALL */, logbuf, sizeof logbuf);
    check(r <= 0, "syslog-read", "%s", r < 0 ? strerror(errno) : r == 0 ? "empty" : "read the host's kernel log");
    /* The "shocker" escape: a file handle naming an inode of the host file system. */
    int root = open("/", O_RDONLY | O_DIRECTORY);
    *(uint32_t *)handle = 8;     /* handle_bytes */
    *(int32_t *)(handle + 4) = 1; /* FILEID_INO32_GEN */
    *(uint32_t *)(handle + 8) = 2; /* inode 2: an ext4 root */
    no_fd("open_by_handle_at", syscall(SYS_open_by_handle_at, root, handle, O_RDONLY), 0);
    int mnt = 0;
    *(uint32_t *)handle = 64;
    long h = syscall(SYS_name_to_handle_at, AT_FDCWD, "/etc", handle, &mnt, 0);
    if (h < 0) {
        pass("name_to_handle_at", "%s", strerror(errno));
    } else {
        info("name_to_handle_at", "gave a handle of %u bytes, type %d", *(uint32_t *)handle, *(int32_t *)(handle + 4));
        no_fd("open_by_handle_at-named", syscall(SYS_open_by_handle_at, root, handle, O_RDONLY), 0);
    }
    if (root >= 0)
        close(root);
    return finish();
}

static int case_int80(int argc, char **argv) {
    if (argc < 8) {
        fail("int80", "no PATH argument");
        return finish();
    }
    const char *path = argv[6];
    char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED) {
        fail("int80-map", "mmap MAP_32BIT: %s", strerror(errno));
        return finish();
    }
    snprintf(low, 4096, "%s", path);
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(39L), "b"(low), "c"(0755L) : "memory");
    check(r == -ENOSYS, "int80-mkdir", "int $0x80 eax=39 returned %ld (want -ENOSYS = %d)", r, -ENOSYS);
    struct stat st;
    int e = stat(path, &st) == 0 ? 0 : errno;
    check(e == ENOENT, "int80-no-dir", "stat %s after: %s", path, e ? strerror(e) : "exists");
    if (e == 0)
        rmdir(path);
    /* i386 getpid (20) must not be answered as x86-64 20 (writev) or anything else. */
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    check(r == -ENOSYS, "int80-getpid", "int $0x80 eax=20 returned %ld (want -ENOSYS)", r);
    return finish();
}

int main(int argc, char **argv) {
    const char *c = setup(argc, argv);
    if (!strcmp(c, "mknod"))
        return case_mknod();
    if (!strcmp(c, "namespaces"))
        return case_namespaces();
    if (!strcmp(c, "hostpids"))
        return case_hostpids();
    if (!strcmp(c, "newapis"))
        return case_newapis();
    if (!strcmp(c, "int80"))
        return case_int80(argc, argv);
    return unknown_case(c);
}
