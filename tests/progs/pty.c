/* pty: pseudo-terminals made by the program itself (/dev/ptmx, /dev/pts/N), compared with
 * Linux. The master, the replica and their names, modes and stat; the line discipline
 * (echo, erase, kill, word erase, EOF, EOL, CR to NL, output NL to CR NL, canonical and
 * non-canonical reads with VMIN/VTIME); a controlling terminal (TIOCSCTTY, /dev/tty,
 * tcgetpgrp/tcgetsid), ^C to its foreground group, SIGWINCH, SIGTTIN for a background
 * reader, SIGHUP when the master closes; the ends' EOF/EIO/poll after the other closes.
 *
 * Linux moves bytes between the ends asynchronously, so each read of the master waits until
 * it has the bytes Linux gives (or 3 s), then 30 ms more for any extra. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static int m, s;
static char name[64];

static void show(const char *what, const char *b, long r) {
    printf("%s: ", what);
    if (r < 0)
        printf("(%s)", strerror(errno));
    for (long i = 0; i < r; i++) {
        unsigned char c = b[i];
        if (c >= 32 && c < 127)
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    printf("\n");
}

/* Reads the master until `want` bytes came (or 3 s passed), then 30 ms more. */
static void drain(const char *what, int want) {
    char b[1024];
    long got = 0;
    for (;;) {
        struct pollfd p = {m, POLLIN, 0};
        int timeout = got >= want ? 30 : 3000;
        if (poll(&p, 1, timeout) <= 0 || !(p.revents & POLLIN))
            break;
        long r = read(m, b + got, sizeof b - got);
        if (r <= 0)
            break;
        got += r;
    }
    show(what, b, got);
}

/* A blocking read of the replica (one canonical line). */
static void sread(const char *what) {
    char b[512];
    long r = read(s, b, sizeof b);
    printf("[%ld] ", r);
    show(what, b, r);
}

static void in(const char *data, size_t n) {
    if (write(m, data, n) != (long)n)
        printf("master write: %s\n", strerror(errno));
}

static void set_lflag(tcflag_t on, tcflag_t off) {
    struct termios tm;
    tcgetattr(s, &tm);
    tm.c_lflag = (tm.c_lflag | on) & ~off;
    tcsetattr(s, TCSANOW, &tm);
}

static void open_pair(void) {
    m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) {
        perror("posix_openpt");
        exit(1);
    }
    snprintf(name, sizeof name, "%s", ptsname(m));
    s = open(name, O_RDWR | O_NOCTTY);
    if (s < 0) {
        perror("open replica");
        exit(1);
    }
}

static void names_and_modes(void) {
    m = posix_openpt(O_RDWR | O_NOCTTY);
    int n = -1, lk = -1;
    printf("TIOCGPTN %d, locked %d\n", ioctl(m, TIOCGPTN, &n), ioctl(m, TIOCGPTLCK, &lk) == 0 && lk);
    snprintf(name, sizeof name, "/dev/pts/%d", n);
    printf("ptsname matches %d\n", strcmp(ptsname(m), name) == 0);
    int r = open(name, O_RDWR | O_NOCTTY);
    printf("open while locked: %d %s\n", r, r < 0 ? strerror(errno) : "");
    unlockpt(m);
    s = open(name, O_RDWR | O_NOCTTY);
    int n2;
    printf("TIOCGPTN on a replica fails: %d\n", ioctl(s, TIOCGPTN, &n2) < 0);
    printf("open after unlockpt %d, isatty %d %d\n", s >= 0, isatty(m), isatty(s));
    printf("ttyname is ptsname %d\n", ttyname(s) && strcmp(ttyname(s), name) == 0);
    struct termios tm;
    tcgetattr(s, &tm);
    printf("replica termios i=%x o=%x c=%x l=%x cc=", tm.c_iflag, tm.c_oflag, tm.c_cflag,
           tm.c_lflag);
    for (int i = 0; i < 17; i++)
        printf("%d,", tm.c_cc[i]);
    tcgetattr(m, &tm);
    printf("\nmaster termios i=%x o=%x l=%x\n", tm.c_iflag, tm.c_oflag, tm.c_lflag);
    struct stat a, b, c;
    fstat(s, &a);
    stat(name, &b);
    fstat(m, &c);
    printf("replica chr %d major %u minor-is-N %d same-inode %d mode %o\n", S_ISCHR(a.st_mode),
           major(a.st_rdev), (int)minor(a.st_rdev) == n, a.st_ino == b.st_ino && a.st_dev == b.st_dev,
           a.st_mode & 0777);
    printf("master chr %d rdev %u,%u\n", S_ISCHR(c.st_mode), major(c.st_rdev), minor(c.st_rdev));
    char ln[256], fdp[64];
    snprintf(fdp, sizeof fdp, "/proc/self/fd/%d", m);
    long k = readlink(fdp, ln, sizeof ln - 1);
    ln[k > 0 ? k : 0] = 0;
    printf("master fd link %s\n", ln);
    snprintf(fdp, sizeof fdp, "/proc/self/fd/%d", s);
    k = readlink(fdp, ln, sizeof ln - 1);
    ln[k > 0 ? k : 0] = 0;
    printf("replica fd link is its name %d\n", strcmp(ln, name) == 0);
    printf("/dev/pts/N is there %d\n", access(name, F_OK) == 0);
    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    printf("TIOCGPTPEER ttyname is ptsname %d\n",
           peer >= 0 && ttyname(peer) && strcmp(ttyname(peer), name) == 0);
    close(peer);
    struct winsize ws = {24, 80, 0, 0}, got;
    ioctl(m, TIOCSWINSZ, &ws);
    ioctl(s, TIOCGWINSZ, &got);
    printf("winsize through the master %dx%d\n", got.ws_row, got.ws_col);
    if (r >= 0)
        close(r);
    close(s);
    close(m);
    printf("gone after the master closes: %d\n", access(name, F_OK) < 0 && errno == ENOENT);
}

static void line_discipline(void) {
    open_pair();
    in("ab\x7f"
       "c\x15xy\x17z\n",
       10);
    drain("erase, kill, word erase", 23);
    sread("line");
    in("foo bar\x17q\n", 10);
    drain("word erase", 19);
    sread("line");
    in("a\x01\t\n", 4);
    drain("control echo", 6);
    sread("line");
    in("l1\nl2\n", 6);
    drain("two lines", 8);
    sread("first");
    sread("second");
    in("eof\x04", 4);
    drain("EOF is not echoed", 3);
    sread("line ended by EOF");
    in("\x04", 1);
    sread("EOF on an empty line");
    in("x\ry\n", 4);
    drain("CR becomes NL", 6);
    sread("first");
    sread("second");
    if (write(s, "t\tu\n", 4) != 4)
        perror("replica write");
    drain("output NL becomes CR NL", 5);
    set_lflag(0, ECHOCTL);
    in("a\x01\n", 3);
    drain("no ECHOCTL", 4);
    sread("line");
    set_lflag(ECHOCTL, ECHOKE);
    in("abc\x15", 4);
    drain("kill without ECHOKE", 7);
    in("q\n", 2);
    drain("after kill", 3);
    sread("line");
    set_lflag(0, ECHO);
    in("hidden\n", 7);
    sread("no echo");
    drain("nothing echoed", 0);
    struct termios tm;
    tcgetattr(s, &tm);
    tm.c_lflag |= ECHO | ECHOKE;
    tm.c_cc[VEOL] = '!';
    tcsetattr(s, TCSANOW, &tm);
    in("ab!cd\n", 6);
    drain("VEOL", 7);
    sread("first");
    sread("second");
    int q = -1;
    in("zz\n", 3);
    drain("echo", 4);
    ioctl(s, FIONREAD, &q);
    printf("FIONREAD replica %d\n", q);
    tcflush(s, TCIFLUSH);
    ioctl(s, FIONREAD, &q);
    printf("after TCIFLUSH %d\n", q);
    /* Non-canonical: bytes as they come, by VMIN and VTIME. */
    tm.c_lflag &= ~ICANON;
    tm.c_cc[VMIN] = 2;
    tm.c_cc[VTIME] = 0;
    tcsetattr(s, TCSANOW, &tm);
    in("r", 1);
    drain("raw echo", 1);
    struct pollfd p = {s, POLLIN, 0};
    printf("VMIN 2, one byte: readable %d\n", poll(&p, 1, 50));
    in("s", 1);
    drain("raw echo", 1);
    sread("VMIN 2");
    tm.c_cc[VMIN] = 0;
    tm.c_cc[VTIME] = 1;
    tcsetattr(s, TCSANOW, &tm);
    sread("VMIN 0 VTIME 1, nothing typed");
    tm.c_cc[VTIME] = 0;
    tcsetattr(s, TCSANOW, &tm);
    sread("VMIN 0 VTIME 0");
    tm.c_lflag |= ICANON;
    tcsetattr(s, TCSANOW, &tm);
    in("part", 4);
    drain("partial line", 4);
    tm.c_lflag &= ~ICANON;
    tm.c_cc[VMIN] = 1;
    tcsetattr(s, TCSANOW, &tm);
    sread("partial line after -icanon");
    /* An interrupt character flushes the input and the echoes of its write. */
    tm.c_lflag |= ICANON;
    tcsetattr(s, TCSANOW, &tm);
    if (write(s, "out1\n", 5) != 5)
        perror("replica write");
    drain("output", 6);
    in("abc\x03", 4);
    drain("^C", 2);
    fcntl(s, F_SETFL, O_NONBLOCK);
    char b[16];
    long r = read(s, b, sizeof b);
    printf("input after ^C: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    fcntl(s, F_SETFL, 0);
    fcntl(m, F_SETFL, O_NONBLOCK);
    r = read(m, b, sizeof b);
    printf("master read, nothing there: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    fcntl(m, F_SETFL, 0);
    close(s);
    r = read(m, b, sizeof b);
    printf("master read after the replica closed: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    p.fd = m;
    p.events = POLLIN | POLLOUT;
    poll(&p, 1, 0);
    printf("master poll %x\n", p.revents);
    s = open(name, O_RDWR | O_NOCTTY);
    close(m);
    r = read(s, b, sizeof b);
    printf("replica read after the master closed: %ld\n", r);
    r = write(s, "x", 1);
    printf("replica write after the master closed: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    p.fd = s;
    poll(&p, 1, 0);
    printf("replica poll %x\n", p.revents);
    close(s);
}

static volatile sig_atomic_t got_sig;
static void on_sig(int sig) { got_sig = sig; }

static void say(const char *msg) {
    if (write(1, msg, strlen(msg)) < 0)
        _exit(3);
}

/* The child: a session leader whose controlling terminal is the pty. */
static int controlling_child(void) {
    close(m); /* else the master stays open in here, and closing it in the parent hangs up nothing */
    close(s);
    setsid();
    int fd = open(name, O_RDWR); /* without O_NOCTTY: it becomes the controlling terminal */
    if (fd < 0)
        return 1;
    char msg[256];
    snprintf(msg, sizeof msg, "child: foreground is us %d, sid is us %d\n",
             tcgetpgrp(fd) == getpid(), tcgetsid(fd) == getpid());
    say(msg);
    int t = open("/dev/tty", O_RDWR);
    struct stat st1;
    fstat(t, &st1);
    snprintf(msg, sizeof msg, "child: /dev/tty: ttyname %s, rdev %u,%u, sid is us %d\n",
             t >= 0 && ttyname(t) ? ttyname(t) : strerror(errno), major(st1.st_rdev),
             minor(st1.st_rdev), tcgetsid(t) == getpid());
    say(msg);
    if (write(t, "via /dev/tty\n", 13) != 13)
        return 1;
    close(t);
    struct sigaction sa = {0};
    sa.sa_handler = on_sig;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    dup2(fd, 0);
    /* Wait for ^C, then for SIGWINCH, telling the parent through the terminal. */
    if (write(fd, "ready\n", 6) != 6)
        return 1;
    while (got_sig != SIGINT)
        pause();
    if (write(fd, "SIGINT\n", 7) != 7)
        return 1;
    while (got_sig != SIGWINCH)
        pause();
    struct winsize ws;
    ioctl(fd, TIOCGWINSZ, &ws);
    snprintf(msg, sizeof msg, "child: SIGWINCH, now %dx%d\n", ws.ws_row, ws.ws_col);
    say(msg);
    /* A background group's read of the terminal stops it (SIGTTIN). */
    pid_t bg = fork();
    if (bg == 0) {
        setpgid(0, 0);
        char c;
        if (read(fd, &c, 1) < 0)
            _exit(2);
        _exit(0);
    }
    setpgid(bg, bg);
    int st;
    waitpid(bg, &st, WUNTRACED);
    snprintf(msg, sizeof msg, "child: background reader stopped by %s\n",
             WIFSTOPPED(st) ? strsignal(WSTOPSIG(st)) : "nothing");
    say(msg);
    kill(bg, SIGKILL);
    waitpid(bg, &st, 0);
    signal(SIGTTIN, SIG_IGN);
    /* Ignoring SIGTTIN, a background read fails with EIO instead. */
    bg = fork();
    if (bg == 0) {
        setpgid(0, 0);
        char c;
        long r = read(fd, &c, 1);
        snprintf(msg, sizeof msg, "child: background read ignoring SIGTTIN: %ld %s\n", r,
                 r < 0 ? strerror(errno) : "");
        say(msg);
        _exit(0);
    }
    setpgid(bg, bg);
    waitpid(bg, &st, 0);
    if (write(fd, "waiting\n", 8) != 8)
        return 1;
    /* Now the parent closes the master: SIGHUP (default: the end). */
    signal(SIGINT, SIG_DFL);
    for (;;)
        pause();
}

static void controlling_terminal(void) {
    open_pair();
    pid_t c = fork();
    if (c == 0)
        _exit(controlling_child());
    drain("child says", 14 + 7);
    in("\x03", 1);
    drain("child says", 10);
    struct winsize ws = {30, 100, 0, 0};
    ioctl(m, TIOCSWINSZ, &ws);
    drain("child says", 9);
    close(s);
    close(m);
    int st;
    waitpid(c, &st, 0);
    printf("child ended by %s\n", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exit");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    names_and_modes();
    line_discipline();
    controlling_terminal();
    return 0;
}
