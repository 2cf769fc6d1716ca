/* file_mmap: mmap of files. A host file (this program) mapped private and read-only, at an
 * offset, private and written (the file stays as it was), shared read-only; the zeroed tail of
 * the last page; a file the program wrote itself (in the sandbox: the overlay); /dev/zero
 * private and shared across fork; and the errors: EBADF, ENODEV (directory, pipe), EACCES
 * (write-only fd, shared writable on a read-only fd), EINVAL (unaligned offset). Stable output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "errname.h"

static void check(const char *what, int ok) { printf("%s: %s\n", what, ok ? "ok" : "FAILED"); }

static const char *map_err(void *p) { return p != MAP_FAILED ? "mapped" : errno_name(errno); }

int main(int argc, char **argv) {
    (void)argc;
    int fd = open(argv[0], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 3 * 4096) {
        printf("cannot open myself\n");
        return 1;
    }
    size_t size = st.st_size;
    char *file = malloc(size);
    if (pread(fd, file, size, 0) != (ssize_t)size)
        return 1;

    char *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    check("private read-only mapping equals the file", p != MAP_FAILED && !memcmp(p, file, size));
    size_t last = size & ~4095UL;
    int zero_tail = 1;
    for (size_t i = size; i < last + 4096; i++)
        zero_tail &= p[i] == 0;
    check("rest of the last page reads as zero", zero_tail);
    munmap(p, size);

    p = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 4096);
    check("mapping at an offset", p != MAP_FAILED && !memcmp(p, file + 4096, 8192));
    munmap(p, 8192);

    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
        memset(p, 'x', 100);
        char again[100];
        pread(fd, again, 100, 0);
        check("private writable mapping: writes stay private", p[0] == 'x' && !memcmp(again, file, 100));
        munmap(p, size);
    } else {
        check("private writable mapping", 0);
    }

    p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    check("shared read-only mapping equals the file", p != MAP_FAILED && !memcmp(p, file, size));
    munmap(p, size);
    printf("shared writable on a read-only fd: %s\n",
           map_err(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)));
    printf("unaligned offset: %s\n", map_err(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 100)));
    close(fd);

    // A file this program writes (inside the sandbox it lives in the overlay).
    char path[] = "/tmp/vmm-file-mmap-XXXXXX";
    int w = mkstemp(path);
    char text[6000];
    for (int i = 0; i < (int)sizeof text; i++)
        text[i] = 'a' + i % 26;
    if (w < 0 || write(w, text, sizeof text) != (ssize_t)sizeof text)
        return 1;
    p = mmap(NULL, sizeof text, PROT_READ, MAP_PRIVATE, w, 0);
    check("mapping of a file written here", p != MAP_FAILED && !memcmp(p, text, sizeof text));
    munmap(p, sizeof text);
    close(w);
    int wo = open(path, O_WRONLY);
    printf("write-only fd: %s\n", map_err(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, wo, 0)));
    close(wo);
    unlink(path);

    int z = open("/dev/zero", O_RDWR);
    p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, z, 0);
    check("/dev/zero private", p != MAP_FAILED && p[0] == 0 && p[8191] == 0 && (p[5] = 1));
    char *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, z, 0);
    if (sh != MAP_FAILED) {
        pid_t c = fork();
        if (c == 0) {
            strcpy(sh, "from the child");
            _exit(0);
        }
        waitpid(c, NULL, 0);
        printf("/dev/zero shared across fork: %s\n", sh);
    }
    close(z);

    printf("bad fd: %s\n", map_err(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 99, 0)));
    int d = open("/", O_RDONLY | O_DIRECTORY);
    printf("directory: %s\n", map_err(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, d, 0)));
    int pp[2];
    pipe(pp);
    printf("pipe: %s\n", map_err(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, pp[0], 0)));
    return 0;
}
