/* devices: /dev/null, /dev/zero and /dev/urandom behave as on Linux (the Sentry serves them). */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    char b[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int n = open("/dev/null", O_RDWR);
    printf("null write %ld read %ld\n", (long)write(n, "abc", 3), (long)read(n, b, 8));
    int z = open("/dev/zero", O_RDONLY);
    printf("zero read %ld b0 %d b7 %d\n", (long)read(z, b, 8), b[0], b[7]);
    int u = open("/dev/urandom", O_RDONLY);
    char r1[32] = {0}, r2[32] = {0};
    long a = read(u, r1, sizeof r1), c = read(u, r2, sizeof r2);
    int same = 1, zero = 1;
    for (int i = 0; i < 32; i++) {
        same &= r1[i] == r2[i];
        zero &= r1[i] == 0;
    }
    printf("urandom reads %ld %ld differ %d nonzero %d\n", a, c, !same, !zero);
    struct stat st;
    fstat(n, &st);
    printf("null is chr %d rdev %lx\n", S_ISCHR(st.st_mode), (unsigned long)st.st_rdev);
    fstat(z, &st);
    printf("zero rdev %lx\n", (unsigned long)st.st_rdev);
    printf("lseek null %ld\n", (long)lseek(n, 10, SEEK_SET));
    printf("write zero %ld\n", (long)write(z, "x", 1));
    return 0;
}
