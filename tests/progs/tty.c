/* tty: run with stdio on a terminal. isatty, the window size, /dev/tty, the foreground
 * process group, raw mode (one keystroke without echo, then the modes restored). The test
 * types "x" after "ready". Stable output (on a terminal: \n becomes \r\n). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("isatty %d %d %d\n", isatty(0), isatty(1), isatty(2));
    struct winsize ws;
    if (ioctl(1, TIOCGWINSZ, &ws) == 0)
        printf("winsize %d x %d\n", ws.ws_row, ws.ws_col);
    int fd = open("/dev/tty", O_RDWR);
    if (fd < 0) {
        perror("open /dev/tty");
        return 1;
    }
    const char msg[] = "written to /dev/tty\n";
    write(fd, msg, strlen(msg));
    printf("/dev/tty isatty %d\n", isatty(fd));
    printf("foreground is our group %d\n", tcgetpgrp(0) == getpgrp());
    struct termios old, raw;
    if (tcgetattr(0, &old) != 0) {
        perror("tcgetattr");
        return 1;
    }
    raw = old;
    cfmakeraw(&raw);
    if (tcsetattr(0, TCSANOW, &raw) != 0) {
        perror("tcsetattr");
        return 1;
    }
    struct termios now;
    tcgetattr(0, &now);
    printf("raw: echo %d icanon %d\r\n", !!(now.c_lflag & ECHO), !!(now.c_lflag & ICANON));
    printf("ready\r\n");
    char c = 0;
    ssize_t n = read(0, &c, 1);
    tcsetattr(0, TCSANOW, &old);
    printf("read %zd byte: %d\n", n, c);
    tcgetattr(0, &now);
    printf("restored: echo %d icanon %d\n", !!(now.c_lflag & ECHO), !!(now.c_lflag & ICANON));
    close(fd);
    errno = 0;
    return 0;
}
