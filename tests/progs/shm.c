/* shm: memory files and the tmpfs behind POSIX shared memory. memfd_create (names, flags,
 * mode, size, reads and writes, shared mappings across fork), its seals (F_ADD_SEALS,
 * F_GET_SEALS and what each seal refuses), shm_open/shm_unlink and sem_open/sem_unlink
 * between processes through /dev/shm, hard links (link, linkat), MAP_SHARED mappings of a
 * written file coherent with read/write, msync, and statfs/fstatfs of the filesystems a
 * program meets. Prints only comparisons and errno names, never ids, sizes of the host's
 * disks or times. One case per run when given its name. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errname.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

static void *const BAD = (void *)8;

static int mfd(const char *name, unsigned flags) {
    return syscall(SYS_memfd_create, name, flags);
}

static int child_status(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A name no other run uses at the same time. */
static void uniq(char *out, size_t n, const char *tag) {
    snprintf(out, n, "/vmm-shm-%s-%d", tag, getpid());
}

static void memfd_case(void) {
    int fd = mfd("test", 0);
    printf("memfd: create %s\n", err(fd));
    char link[64], target[256];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    printf("memfd: name %s\n", target);
    struct stat st;
    fstat(fd, &st);
    printf("memfd: regular %d mode %o nlink %lu size %ld\n", S_ISREG(st.st_mode),
           st.st_mode & 07777, (unsigned long)st.st_nlink, (long)st.st_size);
    printf("memfd: flags rdwr %d, cloexec %d\n", (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR,
           fcntl(fd, F_GETFD));
    printf("memfd: write %zd\n", write(fd, "hello memfd", 11));
    char buf[32] = {0};
    printf("memfd: pread %zd %s\n", pread(fd, buf, sizeof buf - 1, 6), buf);
    printf("memfd: lseek end %ld\n", (long)lseek(fd, 0, SEEK_END));
    printf("memfd: ftruncate 3 %s\n", err(ftruncate(fd, 3)));
    memset(buf, 0, sizeof buf);
    printf("memfd: read after %zd %s\n", pread(fd, buf, sizeof buf, 0), buf);
    printf("memfd: ftruncate 10000 %s\n", err(ftruncate(fd, 10000)));
    memset(buf, 'x', sizeof buf);
    ssize_t got = pread(fd, buf, 4, 3);
    printf("memfd: tail reads zero %zd %d\n", got, buf[0] | buf[1] | buf[3]);
    fstat(fd, &st);
    printf("memfd: size %ld\n", (long)st.st_size);
    printf("memfd: chmod %s\n", err(fchmod(fd, 0600)));
    fstat(fd, &st);
    printf("memfd: mode now %o\n", st.st_mode & 07777);
    printf("memfd: seals %d (sealing not allowed)\n", fcntl(fd, F_GET_SEALS));
    printf("memfd: add seals %s\n", err(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)));
    int c = mfd("c", MFD_CLOEXEC);
    printf("memfd: MFD_CLOEXEC fd flag %d\n", fcntl(c, F_GETFD));
    close(c);
    char longname[300];
    memset(longname, 'n', sizeof longname);
    longname[249] = 0;
    int l = mfd(longname, 0);
    printf("memfd: name of 249 %s\n", err(l));
    close(l);
    longname[249] = 'n';
    longname[250] = 0;
    printf("memfd: name of 250 %s\n", err(mfd(longname, 0)));
    printf("memfd: bad flags %s\n", err(mfd("x", 0x100)));
    printf("memfd: EXEC and NOEXEC_SEAL %s\n", err(mfd("x", MFD_EXEC | MFD_NOEXEC_SEAL)));
    printf("memfd: bad name pointer %s\n", err(mfd(BAD, 0)));
    int e = mfd("", 0);
    printf("memfd: empty name %s\n", err(e));
    close(e);

    /* The mapping is the file: stores show in reads, writes in the mapping, across fork. */
    char *m = mmap(NULL, 10000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("memfd: mmap shared %s\n", m == MAP_FAILED ? errno_name(errno) : "ok");
    memcpy(m + 4096, "via map", 7);
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 7, 4096);
    printf("memfd: store seen by pread %s\n", buf);
    pwrite(fd, "via pwrite", 10, 8000);
    printf("memfd: pwrite seen in map %.10s\n", m + 8000);
    pid_t pid = fork();
    if (pid == 0) {
        memcpy(m + 100, "child", 5);
        pwrite(fd, "CHILD", 5, 200);
        _exit(0);
    }
    printf("memfd: child %d\n", child_status(pid));
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 5, 100);
    printf("memfd: child store %s, child pwrite %.5s\n", buf, m + 200);
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 4096);
    memcpy(p, "PRIVATE", 7);
    printf("memfd: private copy leaves the file %.7s\n", m + 4096);
    munmap(p, 4096);
    munmap(m, 10000);
    close(fd);
}

static void seals_case(void) {
    int fd = mfd("sealed", MFD_ALLOW_SEALING);
    printf("seals: start %d\n", fcntl(fd, F_GET_SEALS));
    ftruncate(fd, 8192);
    printf("seals: shrink %s\n", err(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)));
    const char *r1 = err(ftruncate(fd, 4096));
    printf("seals: ftruncate smaller %s, larger %s\n", r1, err(ftruncate(fd, 12288)));
    printf("seals: grow %s\n", err(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW)));
    r1 = err(ftruncate(fd, 16384));
    printf("seals: ftruncate larger %s, same %s\n", r1, err(ftruncate(fd, 12288)));
    printf("seals: write inside %s\n", err(pwrite(fd, "in", 2, 12000)));
    printf("seals: write across the end %zd (up to it), at the end %s\n",
           pwrite(fd, "out", 3, 12287), err(pwrite(fd, "out", 3, 12288)));
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("seals: write seal with a shared writable map %s\n",
           err(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)));
    munmap(m, 4096);
    printf("seals: write seal after munmap %s\n", err(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE)));
    printf("seals: now %#x\n", fcntl(fd, F_GET_SEALS));
    r1 = err(write(fd, "x", 1));
    printf("seals: write %s, pwrite %s\n", r1, err(pwrite(fd, "x", 1, 0)));
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("seals: mmap shared writable %s\n", m == MAP_FAILED ? errno_name(errno) : "ok");
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    printf("seals: mmap shared read-only %s\n", m == MAP_FAILED ? errno_name(errno) : "ok");
    /* A shared mapping of a write-sealed file can never become writable. */
    printf("seals: mprotect it writable %s\n", err(mprotect(m, 4096, PROT_READ | PROT_WRITE)));
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    printf("seals: mmap private writable %s\n", p == MAP_FAILED ? errno_name(errno) : "ok");
    char *q = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("seals: private read-only mprotect writable %s\n",
           err(mprotect(q, 4096, PROT_READ | PROT_WRITE)));
    printf("seals: unknown bit %s\n", err(fcntl(fd, F_ADD_SEALS, 0x100)));
    r1 = err(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL));
    printf("seals: seal %s, then more %s\n", r1, err(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE)));
    printf("seals: final %#x\n", fcntl(fd, F_GET_SEALS));

    int f2 = mfd("ro", MFD_ALLOW_SEALING);
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", f2);
    int ro = open(link, O_RDONLY);
    printf("seals: reopened read-only %s, add seal %s\n", err(ro),
           err(fcntl(ro, F_ADD_SEALS, F_SEAL_GROW)));
    ftruncate(f2, 4096);
    /* Shared through a read-only descriptor: never writable; through a writable one it is. */
    char *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, ro, 0);
    const char *rr = r == MAP_FAILED ? errno_name(errno) : "ok";
    printf("seals: shared map of the read-only fd %s, mprotect writable %s\n", rr,
           err(mprotect(r, 4096, PROT_READ | PROT_WRITE)));
    char *w = mmap(NULL, 4096, PROT_READ, MAP_SHARED, f2, 0);
    const char *w1 = err(mprotect(w, 4096, PROT_READ | PROT_WRITE));
    printf("seals: shared read-only map of the writable fd, mprotect writable %s, back %s\n", w1,
           err(mprotect(w, 4096, PROT_READ)));
    munmap(w, 4096);
    printf("seals: future write %s\n", err(fcntl(f2, F_ADD_SEALS, F_SEAL_FUTURE_WRITE)));
    printf("seals: write after future write %s\n", err(pwrite(f2, "x", 1, 0)));
    w = mmap(NULL, 4096, PROT_READ, MAP_SHARED, f2, 0);
    const char *wr = w == MAP_FAILED ? errno_name(errno) : "ok";
    printf("seals: shared map after future write %s, mprotect writable %s\n", wr,
           err(mprotect(w, 4096, PROT_READ | PROT_WRITE)));
    int pfd[2];
    pipe(pfd);
    printf("seals: pipe get %s, add %s\n", err(fcntl(pfd[0], F_GET_SEALS)),
           err(fcntl(pfd[1], F_ADD_SEALS, F_SEAL_SEAL)));
}

static void shmopen_case(void) {
    char name[64], path[80];
    uniq(name, sizeof name, "obj");
    snprintf(path, sizeof path, "/dev/shm%s", name);
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    printf("shm_open: create %s\n", err(fd));
    printf("shm_open: excl again %s\n", err(shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600)));
    printf("shm_open: ftruncate %s\n", err(ftruncate(fd, 8192)));
    struct stat st;
    fstat(fd, &st);
    printf("shm_open: mode %o size %ld nlink %lu\n", st.st_mode & 07777, (long)st.st_size,
           (unsigned long)st.st_nlink);
    struct stat ps;
    const char *r = err(stat(path, &ps));
    printf("shm_open: stat path %s, same inode %d\n", r,
           ps.st_ino == st.st_ino && ps.st_dev == st.st_dev);
    printf("shm_open: seals %d\n", fcntl(fd, F_GET_SEALS));
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    strcpy(m, "parent");
    pid_t pid = fork();
    if (pid == 0) {
        int cfd = shm_open(name, O_RDWR, 0);
        char *cm = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        if (cfd < 0 || cm == MAP_FAILED)
            _exit(2);
        int saw = strcmp(cm, "parent") == 0;
        strcpy(cm + 4096, "from the child");
        _exit(saw ? 0 : 3);
    }
    printf("shm_open: child saw the parent's store, exit %d\n", child_status(pid));
    printf("shm_open: parent sees %s\n", m + 4096);
    int listed = 0;
    DIR *d = opendir("/dev/shm");
    struct dirent *de;
    while (d && (de = readdir(d)))
        listed |= strcmp(de->d_name, name + 1) == 0 && de->d_type == DT_REG;
    if (d)
        closedir(d);
    printf("shm_open: listed in /dev/shm %d\n", listed);
    printf("shm_open: unlink %s\n", err(shm_unlink(name)));
    printf("shm_open: open after unlink %s\n", err(shm_open(name, O_RDWR, 0)));
    printf("shm_open: unlink again %s\n", err(shm_unlink(name)));
    fstat(fd, &st);
    printf("shm_open: after unlink nlink %lu, map still %s\n", (unsigned long)st.st_nlink,
           m + 4096);
    printf("shm_open: read-only open of a missing name %s\n",
           err(shm_open("/vmm-no-such-object", O_RDONLY, 0)));
    munmap(m, 8192);
    close(fd);
}

static void sem_case(void) {
    char name[64];
    uniq(name, sizeof name, "sem");
    sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    printf("sem_open: create %s\n", s == SEM_FAILED ? errno_name(errno) : "ok");
    sem_t *again = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    printf("sem_open: excl again %s\n", again == SEM_FAILED ? errno_name(errno) : "ok");
    pid_t pid = fork();
    if (pid == 0) {
        sem_t *c = sem_open(name, 0);
        if (c == SEM_FAILED)
            _exit(2);
        sem_post(c);
        sem_post(c);
        _exit(0);
    }
    int r1 = sem_wait(s), r2 = sem_wait(s);
    printf("sem_open: two waits woken by the child %d %d, child %d\n", r1, r2,
           child_status(pid));
    int v = -1;
    sem_getvalue(s, &v);
    printf("sem_open: value %d, trywait %s\n", v, err(sem_trywait(s)));
    sem_post(s);
    sem_t *same = sem_open(name, 0);
    sem_getvalue(same, &v);
    printf("sem_open: opened again, value %d\n", v);
    const char *u = err(sem_unlink(name));
    printf("sem_open: unlink %s, open after %s\n", u,
           sem_open(name, 0) == SEM_FAILED ? errno_name(errno) : "ok");
    sem_close(same);
    sem_close(s);
}

static void link_case(void) {
    char a[64], b[96], c[96];
    char name[40];
    uniq(name, sizeof name, "a");
    snprintf(a, sizeof a, "/dev/shm%s", name);
    snprintf(b, sizeof b, "%s-b", a);
    snprintf(c, sizeof c, "%s-c", a);
    int fd = open(a, O_CREAT | O_EXCL | O_RDWR, 0640);
    write(fd, "linked", 6);
    printf("link: link %s\n", err(link(a, b)));
    struct stat sa, sb;
    stat(a, &sa);
    stat(b, &sb);
    printf("link: same inode %d, nlink %lu %lu, mode %o\n", sa.st_ino == sb.st_ino,
           (unsigned long)sa.st_nlink, (unsigned long)sb.st_nlink, sb.st_mode & 07777);
    int fb = open(b, O_RDWR | O_APPEND);
    write(fb, " twice", 6);
    char buf[32] = {0};
    pread(fd, buf, sizeof buf - 1, 0);
    printf("link: written through the other name %s\n", buf);
    chmod(b, 0600);
    stat(a, &sa);
    printf("link: chmod through one name %o\n", sa.st_mode & 07777);
    printf("link: onto an existing name %s\n", err(link(a, b)));
    printf("link: missing source %s\n", err(link("/dev/shm/vmm-none", c)));
    printf("link: a directory %s\n", err(link("/dev/shm", c)));
    char tmp[80];
    snprintf(tmp, sizeof tmp, "/tmp/vmm-shm-link-%d", getpid());
    printf("link: into another filesystem %s\n", err(link(a, tmp)));
    printf("link: linkat bad flags %s\n", err(linkat(AT_FDCWD, a, AT_FDCWD, c, 0x1)));
    printf("link: unlink one %s\n", err(unlink(a)));
    fstat(fd, &sa);
    stat(b, &sb);
    printf("link: nlink now %lu, other name still reads %ld bytes\n",
           (unsigned long)sa.st_nlink, (long)sb.st_size);
    printf("link: linkat of the fd %s\n", err(linkat(fb, "", AT_FDCWD, c, AT_EMPTY_PATH)));
    stat(c, &sa);
    printf("link: nlink %lu\n", (unsigned long)sa.st_nlink);
    unlink(b);
    unlink(c);
    printf("link: linkat of an fd with no name left %s\n",
           err(linkat(fb, "", AT_FDCWD, c, AT_EMPTY_PATH)));
    int m = mfd("m", 0);
    printf("link: linkat of a memfd %s\n", err(linkat(m, "", AT_FDCWD, c, AT_EMPTY_PATH)));
    /* A symlink is linked, not followed, unless asked. */
    char s[96], t[96];
    snprintf(s, sizeof s, "%s-sym", a);
    snprintf(t, sizeof t, "%s-hl", a);
    int tf = open(b, O_CREAT | O_RDWR, 0600);
    close(tf);
    symlink(b, s);
    printf("link: of a symlink %s\n", err(link(s, t)));
    struct stat lt;
    lstat(t, &lt);
    printf("link: is a symlink %d\n", S_ISLNK(lt.st_mode));
    unlink(t);
    printf("link: following it %s\n", err(linkat(AT_FDCWD, s, AT_FDCWD, t, AT_SYMLINK_FOLLOW)));
    lstat(t, &lt);
    stat(b, &sb);
    printf("link: is the file %d %d\n", S_ISREG(lt.st_mode), lt.st_ino == sb.st_ino);
    printf("link: a symlink into another filesystem %s\n", err(link(s, tmp)));
    printf("link: a directory into another filesystem %s\n", err(link("/tmp", c)));
    unlink(s);
    unlink(t);
    unlink(b);
}

static void mapfile_case(void) {
    char path[80];
    snprintf(path, sizeof path, "/tmp/vmm-shm-map-%d", getpid());
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    ftruncate(fd, 3 * 4096);
    char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("mapfile: mmap shared %s\n", m == MAP_FAILED ? errno_name(errno) : "ok");
    strcpy(m + 5000, "stored");
    char buf[16] = {0};
    pread(fd, buf, 6, 5000);
    printf("mapfile: read sees the store %s\n", buf);
    pwrite(fd, "written", 7, 9000);
    printf("mapfile: map sees the write %.7s\n", m + 9000);
    char *m2 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096);
    printf("mapfile: second map at an offset %.6s\n", m2 + 5000 - 4096);
    printf("mapfile: msync %s, async %s, invalidate %s\n", err(msync(m, 3 * 4096, MS_SYNC)),
           err(msync(m, 4096, MS_ASYNC)), err(msync(m, 4096, MS_INVALIDATE)));
    printf("mapfile: msync unaligned %s, both flags %s, bad flag %s\n",
           err(msync(m + 1, 4096, MS_SYNC)), err(msync(m, 4096, MS_SYNC | MS_ASYNC)),
           err(msync(m, 4096, 8)));
    munmap(m2, 4096);
    printf("mapfile: msync of unmapped %s\n", err(msync(m2, 4096, MS_SYNC)));
    pid_t pid = fork();
    if (pid == 0) {
        strcpy(m, "child");
        _exit(0);
    }
    child_status(pid);
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 5, 0);
    printf("mapfile: child's store %s\n", buf);
    close(fd);
    printf("mapfile: still mapped after close %.6s\n", m + 5000);
    int ro = open(path, O_RDONLY);
    char *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
    printf("mapfile: shared writable of a read-only fd %s\n",
           w == MAP_FAILED ? errno_name(errno) : "ok");
    char *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, ro, 0);
    printf("mapfile: shared read-only %s %.5s\n", r == MAP_FAILED ? errno_name(errno) : "ok",
           r == MAP_FAILED ? "" : r);
    strcpy(m, "later");
    printf("mapfile: and sees later stores %.5s\n", r);
    printf("mapfile: mprotect it writable %s\n", err(mprotect(r, 4096, PROT_READ | PROT_WRITE)));
    /* The same for a file of the sandbox's root (the host's, read-only here). */
    int hf = open("/bin/sh", O_RDONLY);
    char *h = mmap(NULL, 4096, PROT_READ, MAP_SHARED, hf, 0);
    const char *hr = h == MAP_FAILED ? errno_name(errno) : "ok";
    printf("mapfile: /bin/sh shared read-only %s, mprotect writable %s\n", hr,
           err(mprotect(h, 4096, PROT_READ | PROT_WRITE)));
    munmap(m, 3 * 4096);
    unlink(path);
}

static const char *fsname(long type) {
    switch (type) {
    case 0x01021994: return "tmpfs";
    case 0x9fa0: return "proc";
    case 0x50495045: return "pipefs";
    case 0x534f434b: return "sockfs";
    case 0x09041934: return "anon_inodefs";
    default: return "other";
    }
}

/* statfs of `path` (or fstatfs of `fd` when path is NULL): its result and what it names. */
static void show_fs(const char *what, const char *path, int fd) {
    struct statfs s;
    memset(&s, 0, sizeof s);
    const char *r = err(path ? statfs(path, &s) : fstatfs(fd, &s));
    printf("statfs: %s %s %s\n", what, r, fsname(s.f_type));
}

static void statfs_case(void) {
    struct statfs s;
    const char *r = err(statfs("/dev/shm", &s));
    printf("statfs: /dev/shm %s %s bsize %ld namelen %ld room %d\n", r, fsname(s.f_type),
           (long)s.f_bsize, (long)s.f_namelen, s.f_bavail > 0 && s.f_blocks >= s.f_bavail);
    struct statvfs v;
    r = err(statvfs("/dev/shm", &v));
    printf("statfs: statvfs /dev/shm %s rdonly %d room %d\n", r, !!(v.f_flag & ST_RDONLY),
           v.f_bavail > 0 && v.f_frsize == 4096);
    char name[64];
    uniq(name, sizeof name, "fs");
    int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
    shm_unlink(name);
    show_fs("shm fd", NULL, fd);
    show_fs("memfd", NULL, mfd("m", 0));
    show_fs("/proc", "/proc/self", -1);
    int pfd[2];
    pipe(pfd);
    show_fs("pipe", NULL, pfd[0]);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    show_fs("socket", NULL, sv[0]);
    show_fs("eventfd", NULL, eventfd(0, 0));
    r = err(statfs("/", &s));
    printf("statfs: / %s, room %d\n", r, s.f_blocks >= s.f_bavail);
    printf("statfs: missing %s, not a dir on the way %s\n",
           err(statfs("/no/such/path", &s)), err(statfs("/dev/null/x", &s)));
    /* Raw calls: musl's wrappers clear the buffer first. */
    printf("statfs: bad buffer %s, bad path %s, bad fd %s, fstatfs bad buffer %s\n",
           err(syscall(SYS_statfs, "/", BAD)), err(syscall(SYS_statfs, BAD, &s)),
           err(fstatfs(999, &s)), err(syscall(SYS_fstatfs, 0, BAD)));
}

struct entry {
    const char *name;
    void (*run)(void);
};

static const struct entry CASES[] = {
    {"memfd", memfd_case}, {"seals", seals_case},     {"shm_open", shmopen_case},
    {"sem_open", sem_case}, {"link", link_case},      {"mapfile", mapfile_case},
    {"statfs", statfs_case},
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(20);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        if (argc < 2 || strcmp(argv[1], CASES[i].name) == 0)
            CASES[i].run();
    return 0;
}
