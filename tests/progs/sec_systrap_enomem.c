/* sec_systrap_enomem [PAGES [STRIDE [protect]]]: touches every STRIDE-th page of a large anonymous mapping, so that on
 * the fallbacks each touched page is a host mapping of its own in the stub and the host's map
 * count limit (vm.max_map_count) is reached long before memory runs out. Linux serves this;
 * the sandbox may not, but the failure must be this process's (SIGBUS), never the
 * sandbox's. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    long pages = argc > 1 ? atol(argv[1]) : 70000;
    long stride = argc > 2 ? atol(argv[2]) : 2;
    size_t len = (size_t)pages * stride * 4096;
    char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    for (long i = 0; i < pages; i++)
        p[i * stride * 4096] = 1;
    printf("touched %ld pages\n", pages);
    /* With a third argument: every other page read-only, one host mapping each. */
    if (argc > 3) {
        for (long i = 0; i < pages * stride; i += 2)
            if (mprotect(p + i * 4096, 4096, PROT_READ) != 0) {
                printf("mprotect failed at page %ld\n", i);
                return 1;
            }
        long sum = 0;
        for (long i = 0; i < pages * stride; i++)
            sum += p[i * 4096];
        printf("protected, sum %ld\n", sum);
    }
    return 0;
}
