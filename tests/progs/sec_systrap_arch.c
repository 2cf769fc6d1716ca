/* sec_systrap_arch MODE: `int80` makes an i386 syscall from 64-bit code (`int $0x80`, eax=1:
 * exit on i386, write on x86-64) with 64-bit registers set up for write(1, msg, len); the
 * sandbox must never serve it with the 64-bit table (it answers ENOSYS). `vsyscall` calls the
 * legacy vsyscall page (gettimeofday, time, getcpu) through function pointers and checks the
 * results against the libc calls. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char msg[] = "ESCAPED: served with the 64-bit table\n";

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "int80")) {
        long ret;
        __asm__ volatile("int $0x80"
                         : "=a"(ret)
                         : "a"(1L), "b"(42L), "D"(1L), "S"(msg), "d"(sizeof msg - 1)
                         : "memory", "rcx", "r11");
        printf("int80: %ld\n", ret);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "vsyscall")) {
        int (*vgettimeofday)(struct timeval *, void *) = (void *)0xffffffffff600000UL;
        long (*vtime)(long *) = (void *)0xffffffffff600400UL;
        long (*vgetcpu)(unsigned *, unsigned *, void *) = (void *)0xffffffffff600800UL;
        struct timeval tv = {0, 0};
        int r = vgettimeofday(&tv, 0);
        long now = time(0);
        printf("gettimeofday: %d %s\n", r, (tv.tv_sec >= now - 2 && tv.tv_sec <= now + 2) ? "ok" : "wrong");
        long t2 = 0;
        long t = vtime(&t2);
        printf("time: %s\n", (t == t2 && t >= now - 2 && t <= now + 2) ? "ok" : "wrong");
        unsigned cpu = 9999, node = 9999;
        long g = vgetcpu(&cpu, &node, 0);
        printf("getcpu: %ld %s\n", g, (cpu < 4096 && node < 4096) ? "ok" : "wrong");
        return 0;
    }
    return 2;
}
