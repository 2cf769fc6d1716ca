//! Memory files and the tmpfs behind POSIX shared memory (`progs/shm.c`): `memfd_create`
//! (names, flags, mode, size, I/O, shared mappings across fork, private copies), seals
//! (`F_ADD_SEALS`/`F_GET_SEALS` and what each refuses: shrinking, growing — a write across
//! the end stops at it — writing, shared writable mappings, `mprotect` making a shared
//! mapping writable (EACCES: write-sealed, or a read-only descriptor), EBUSY while a writable
//! mapping exists, more seals after `F_SEAL_SEAL`, a read-only descriptor), `shm_open`/`shm_unlink` and
//! `sem_open`/`sem_unlink` between processes through `/dev/shm`, hard links (`link`,
//! `linkat` with `AT_EMPTY_PATH` and `AT_SYMLINK_FOLLOW`, EXDEV, EEXIST, EPERM), `MAP_SHARED`
//! mappings of a written file coherent with `read`/`write` and across fork, `msync`, and
//! `statfs`/`fstatfs` of the filesystems a program meets. Each case runs alone, natively and
//! on every platform under test and every variant; the output must be the same, and natively
//! the expected.

use vmm_tests::{case_as_expected, lines_of};

/// What each case prints natively (Linux 6.1 to 6.18), by the prefixes of its lines.
const EXPECTED: &str = "\
memfd: create ok
memfd: name /memfd:test (deleted)
memfd: regular 1 mode 777 nlink 0 size 0
memfd: flags rdwr 1, cloexec 0
memfd: write 11
memfd: pread 5 memfd
memfd: lseek end 11
memfd: ftruncate 3 ok
memfd: read after 3 hel
memfd: ftruncate 10000 ok
memfd: tail reads zero 4 0
memfd: size 10000
memfd: chmod ok
memfd: mode now 600
memfd: seals 1 (sealing not allowed)
memfd: add seals EPERM
memfd: MFD_CLOEXEC fd flag 1
memfd: name of 249 ok
memfd: name of 250 EINVAL
memfd: bad flags EINVAL
memfd: EXEC and NOEXEC_SEAL EINVAL
memfd: bad name pointer EFAULT
memfd: empty name ok
memfd: mmap shared ok
memfd: store seen by pread via map
memfd: pwrite seen in map via pwrite
memfd: child 0
memfd: child store child, child pwrite CHILD
memfd: private copy leaves the file via map
seals: start 0
seals: shrink ok
seals: ftruncate smaller EPERM, larger ok
seals: grow ok
seals: ftruncate larger EPERM, same ok
seals: write inside ok
seals: write across the end 1 (up to it), at the end EPERM
seals: write seal with a shared writable map EBUSY
seals: write seal after munmap ok
seals: now 0xe
seals: write EPERM, pwrite EPERM
seals: mmap shared writable EPERM
seals: mmap shared read-only ok
seals: mprotect it writable EACCES
seals: mmap private writable ok
seals: private read-only mprotect writable ok
seals: unknown bit EINVAL
seals: seal ok, then more EPERM
seals: final 0xf
seals: reopened read-only ok, add seal EPERM
seals: shared map of the read-only fd ok, mprotect writable EACCES
seals: shared read-only map of the writable fd, mprotect writable ok, back ok
seals: future write ok
seals: write after future write EPERM
seals: shared map after future write ok, mprotect writable EACCES
seals: pipe get EINVAL, add EINVAL
shm_open: create ok
shm_open: excl again EEXIST
shm_open: ftruncate ok
shm_open: mode 600 size 8192 nlink 1
shm_open: stat path ok, same inode 1
shm_open: seals 1
shm_open: child saw the parent's store, exit 0
shm_open: parent sees from the child
shm_open: listed in /dev/shm 1
shm_open: unlink ok
shm_open: open after unlink ENOENT
shm_open: unlink again ENOENT
shm_open: after unlink nlink 0, map still from the child
shm_open: read-only open of a missing name ENOENT
sem_open: create ok
sem_open: excl again EEXIST
sem_open: two waits woken by the child 0 0, child 0
sem_open: value 0, trywait EAGAIN
sem_open: opened again, value 1
sem_open: unlink ok, open after ENOENT
link: link ok
link: same inode 1, nlink 2 2, mode 640
link: written through the other name linked twice
link: chmod through one name 600
link: onto an existing name EEXIST
link: missing source ENOENT
link: a directory EPERM
link: into another filesystem EXDEV
link: linkat bad flags EINVAL
link: unlink one ok
link: nlink now 1, other name still reads 12 bytes
link: linkat of the fd ok
link: nlink 2
link: linkat of an fd with no name left ENOENT
link: linkat of a memfd EXDEV
link: of a symlink ok
link: is a symlink 1
link: following it ok
link: is the file 1 1
link: a symlink into another filesystem EXDEV
link: a directory into another filesystem EXDEV
mapfile: mmap shared ok
mapfile: read sees the store stored
mapfile: map sees the write written
mapfile: second map at an offset stored
mapfile: msync ok, async ok, invalidate ok
mapfile: msync unaligned EINVAL, both flags EINVAL, bad flag EINVAL
mapfile: msync of unmapped ENOMEM
mapfile: child's store child
mapfile: still mapped after close stored
mapfile: shared writable of a read-only fd EACCES
mapfile: shared read-only ok child
mapfile: and sees later stores later
mapfile: mprotect it writable EACCES
mapfile: /bin/sh shared read-only ok, mprotect writable EACCES
statfs: /dev/shm ok tmpfs bsize 4096 namelen 255 room 1
statfs: statvfs /dev/shm ok rdonly 0 room 1
statfs: shm fd ok tmpfs
statfs: memfd ok tmpfs
statfs: /proc ok proc
statfs: pipe ok pipefs
statfs: socket ok sockfs
statfs: eventfd ok anon_inodefs
statfs: / ok, room 1
statfs: missing ENOENT, not a dir on the way ENOTDIR
statfs: bad buffer EFAULT, bad path EFAULT, bad fd EBADF, fstatfs bad buffer EFAULT
";

/// Case `name`, against the lines of [`EXPECTED`] it prints (each starts with its name).
fn case(name: &str) {
    case_as_expected("shm", name, &lines_of(EXPECTED, &[name]));
}

#[test]
fn memfd() {
    case("memfd");
}

#[test]
fn seals() {
    case("seals");
}

#[test]
fn shm_open() {
    case("shm_open");
}

#[test]
fn sem_open() {
    case("sem_open");
}

#[test]
fn link() {
    case("link");
}

#[test]
fn mapfile() {
    case("mapfile");
}

#[test]
fn statfs() {
    case("statfs");
}

/// Python's `multiprocessing` (`progs/py_multiprocessing.py`): pools under fork and spawn,
/// queues, every synchronization object, shared ctypes, `shared_memory` and a manager, with
/// the same output as natively.
#[test]
fn python_multiprocessing() {
    vmm_tests::python_script_same_as_native(
        "python_multiprocessing",
        "py_multiprocessing.py",
        "python multiprocessing",
    );
}
