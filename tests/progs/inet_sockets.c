/* TCP and UDP over the loopback (IPv4, IPv6, dual-stack): bind rules (EADDRINUSE,
 * SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY, EADDRNOTAVAIL, ephemeral ports), listen without
 * bind, connect (refused, non-blocking EINPROGRESS, to 0.0.0.0), accept and the addresses each
 * side sees, shutdown, reset on close with unread data and with SO_LINGER 0, the write after
 * the peer closed and EPIPE, MSG_PEEK/WAITALL/DONTWAIT, UDP datagrams (senders' addresses,
 * connected sockets, truncation, EMSGSIZE, the port-unreachable error), socket options, poll
 * and epoll readiness, a transfer between processes and one between threads. Compared with a
 * native run: nothing printed depends on port numbers or timing (ports are checked against
 * each other and the ephemeral range, never printed). Every wait is on the other side, and
 * alarm() is a watchdog naming the stage that hung. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errname.h"

/* <linux/netlink.h>'s protocols (musl's toolchain has no kernel headers). */
#define NETLINK_ROUTE 0
#define NETLINK_AUDIT 9

static volatile int sigpipes;
static const char *volatile stage = "start";

static void on_pipe(int s) { (void)s; sigpipes++; }
static void on_watchdog(int s) {
    (void)s;
    static const char m[] = "WATCHDOG: stuck in: ";
    if (write(1, m, sizeof m - 1) < 0 || write(1, stage, strlen(stage)) < 0 || write(1, "\n", 1) < 0) {
    }
    _exit(3);
}

#define SHOW(label, call) do { long r_ = (long)(call); printf("%s: %s\n", label, r_ < 0 ? errno_name(errno) : "ok"); } while (0)
#define CHECK(x) do { if (!(x)) printf("FAIL line %d: %s (errno %s)\n", __LINE__, #x, errno_name(errno)); } while (0)

static struct sockaddr_in sin4(const char *ip, int port) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}
static struct sockaddr_in6 sin6(const char *ip, int port) {
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return a;
}

/* A socket address as "family ip" (the port is left out: it differs run to run). */
static const char *addr_str(const struct sockaddr_storage *ss) {
    static char b[80];
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof ip);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof ip);
    snprintf(b, sizeof b, "%s %s", ss->ss_family == AF_INET ? "AF_INET" : ss->ss_family == AF_INET6 ? "AF_INET6" : "?", ip);
    return b;
}
static int port_of(const struct sockaddr_storage *ss) {
    return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                          : ((const struct sockaddr_in6 *)ss)->sin6_port);
}
static int local_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0) return -1;
    return port_of(&ss);
}
static void show_name(const char *what, int fd, int peer) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t l = sizeof ss;
    int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &l) : getsockname(fd, (struct sockaddr *)&ss, &l);
    if (r < 0) printf("%s: %s\n", what, errno_name(errno));
    else printf("%s: %s len %u\n", what, addr_str(&ss), (unsigned)l);
}
static void show_poll(const char *what, struct pollfd *pf) {
    int n = poll(pf, 1, 5000);
    printf("%s: poll %d revents %#x\n", what, n, pf->revents);
}
static int ephemeral(int port) { return port >= 32768 && port <= 60999; }

/* A listener on ip (AF_INET or AF_INET6 by the address's form) with an ephemeral port. */
static int listener(int family, const char *ip, int *port) {
    int s = socket(family, SOCK_STREAM, 0);
    CHECK(s >= 0);
    if (family == AF_INET) {
        struct sockaddr_in a = sin4(ip, 0);
        CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    } else {
        struct sockaddr_in6 a = sin6(ip, 0);
        CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    }
    CHECK(listen(s, 16) == 0);
    *port = local_port(s);
    return s;
}
static int connect4(const char *ip, int port, int flags) {
    int c = socket(AF_INET, SOCK_STREAM | flags, 0);
    struct sockaddr_in a = sin4(ip, port);
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    if (r < 0 && !(errno == EINPROGRESS && (flags & SOCK_NONBLOCK))) {
        int e = errno;
        close(c);
        errno = e;
        return -1;
    }
    return c;
}
/* A port nobody listens on: one the system just gave out and took back. */
static int dead_port(int type) {
    int s = socket(AF_INET, type, 0);
    struct sockaddr_in a = sin4("127.0.0.1", 0);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    int p = local_port(s);
    close(s);
    return p;
}

static void test_tcp_basic(void) {
    stage = "tcp basic";
    printf("== tcp basic\n");
    int port, l = listener(AF_INET, "127.0.0.1", &port);
    printf("listener port ephemeral: %d\n", ephemeral(port));
    show_name("listener name", l, 0);
    show_name("listener peer", l, 1);
    int c = connect4("127.0.0.1", port, 0);
    CHECK(c >= 0);
    struct sockaddr_storage pa;
    socklen_t pl = sizeof pa;
    int a = accept(l, (struct sockaddr *)&pa, &pl);
    CHECK(a >= 0);
    printf("accepted from: %s len %u, port is the client's: %d\n", addr_str(&pa), (unsigned)pl, port_of(&pa) == local_port(c));
    show_name("client name", c, 0);
    show_name("client peer", c, 1);
    show_name("accepted name", a, 0);
    printf("client port ephemeral: %d, accepted on the listener's port: %d\n", ephemeral(local_port(c)), local_port(a) == port);
    SHOW("write", write(c, "hello", 5));
    char b[64] = { 0 };
    printf("peek %zd\n", recv(a, b, sizeof b, MSG_PEEK));
    int n = 0;
    CHECK(ioctl(a, FIONREAD, &n) == 0);
    printf("FIONREAD %d\n", n);
    printf("read %zd '%s'\n", read(a, b, sizeof b), b);
    SHOW("recv nothing waiting (DONTWAIT)", recv(a, b, sizeof b, MSG_DONTWAIT));
    SHOW("shutdown WR", shutdown(c, SHUT_WR));
    printf("read after peer's SHUT_WR %zd\n", read(a, b, sizeof b));
    SHOW("write to the half-closed client", write(a, "back", 4));
    printf("client reads %zd\n", read(c, b, sizeof b));
    SHOW("client write after its SHUT_WR", send(c, "x", 1, MSG_NOSIGNAL));
    close(a);
    printf("client read after close %zd\n", read(c, b, sizeof b));
    close(c);
    /* MSG_WAITALL across two writes. */
    c = connect4("127.0.0.1", port, 0);
    a = accept(l, NULL, NULL);
    CHECK(write(c, "abc", 3) == 3 && write(c, "def", 3) == 3);
    memset(b, 0, sizeof b);
    printf("waitall %zd '%s'\n", recv(a, b, 6, MSG_WAITALL), b);
    close(a);
    close(c);
    close(l);
}

static void test_errors(void) {
    stage = "errors";
    printf("== errors\n");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sin4("192.0.2.1", 0); /* TEST-NET-1: never a local address */
    SHOW("bind non-local", bind(s, (struct sockaddr *)&a, sizeof a));
    a = sin4("127.0.0.1", 0);
    SHOW("bind short", bind(s, (struct sockaddr *)&a, sizeof a - 1));
    struct sockaddr_in6 a6 = sin6("::1", 0);
    SHOW("bind v6 address on v4 socket", bind(s, (struct sockaddr *)&a6, sizeof a6));
    SHOW("bind", bind(s, (struct sockaddr *)&a, sizeof a));
    SHOW("bind again", bind(s, (struct sockaddr *)&a, sizeof a));
    char b[8];
    SHOW("recv unconnected", recv(s, b, sizeof b, 0));
    int before = sigpipes;
    SHOW("send unconnected", send(s, "x", 1, 0));
    printf("SIGPIPEs: %d\n", sigpipes - before);
    SHOW("shutdown unconnected", shutdown(s, SHUT_RDWR));
    SHOW("getpeername unconnected", getpeername(s, (struct sockaddr *)&a, &(socklen_t){ sizeof a }));
    SHOW("accept not listening", accept(s, NULL, NULL));
    close(s);
    SHOW("seqpacket", socket(AF_INET, SOCK_SEQPACKET, 0));
    SHOW("stream with UDP", socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
    SHOW("dgram with TCP", socket(AF_INET6, SOCK_DGRAM, IPPROTO_TCP));
    int sv[2];
    SHOW("socketpair", socketpair(AF_INET, SOCK_STREAM, 0, sv));
    s = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW("listen on UDP", listen(s, 1));
    SHOW("accept on UDP", accept(s, NULL, NULL));
    close(s);

    int p = dead_port(SOCK_STREAM);
    SHOW("connect refused", connect4("127.0.0.1", p, 0));
    int c = connect4("127.0.0.1", p, SOCK_NONBLOCK);
    printf("non-blocking refused connect: %s\n", c >= 0 ? errno_name(errno) : "failed");
    struct pollfd pf = { .fd = c, .events = POLLIN | POLLOUT };
    show_poll("refused", &pf);
    int e = -1;
    socklen_t el = sizeof e;
    CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &el) == 0);
    printf("SO_ERROR %s", errno_name(e));
    CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &el) == 0);
    printf(", then %d\n", e);
    SHOW("connect after the refusal", connect(c, (struct sockaddr *)&(struct sockaddr_in){ .sin_family = AF_INET }, sizeof(struct sockaddr_in)));
    close(c);
}

static void test_nonblocking(void) {
    stage = "non-blocking";
    printf("== non-blocking\n");
    int port, l = listener(AF_INET, "0.0.0.0", &port);
    fcntl(l, F_SETFL, O_NONBLOCK);
    SHOW("accept nothing pending", accept(l, NULL, NULL));
    int c = connect4("0.0.0.0", port, SOCK_NONBLOCK);
    printf("connect: %s\n", errno_name(errno));
    struct pollfd pf = { .fd = c, .events = POLLOUT };
    show_poll("connected", &pf);
    int e = -1;
    socklen_t el = sizeof e;
    getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &el);
    printf("SO_ERROR %d\n", e);
    struct sockaddr_in a = sin4("127.0.0.1", port);
    SHOW("connect again", connect(c, (struct sockaddr *)&a, sizeof a));
    show_name("peer of a connect to 0.0.0.0", c, 1);
    struct pollfd lp = { .fd = l, .events = POLLIN };
    show_poll("listener", &lp);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP }, out[2];
    int s = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    CHECK(s >= 0);
    ev.data.fd = s;
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    int n = epoll_wait(ep, out, 2, 5000);
    printf("epoll fresh %d events %#x\n", n, n > 0 ? out[0].events : 0);
    CHECK(write(c, "ping", 4) == 4);
    n = epoll_wait(ep, out, 2, 5000);
    printf("epoll data %d events %#x\n", n, n > 0 ? out[0].events : 0);
    char b[8];
    CHECK(read(s, b, sizeof b) == 4);
    close(c);
    n = epoll_wait(ep, out, 2, 5000);
    printf("epoll peer closed %d events %#x\n", n, n > 0 ? out[0].events : 0);
    printf("read at EOF %zd\n", read(s, b, sizeof b));
    close(ep);
    close(s);
    close(l);
}

static void test_resets(void) {
    stage = "resets";
    printf("== resets\n");
    int port, l = listener(AF_INET, "127.0.0.1", &port);
    char b[16];
    /* Close with unread data: the peer is reset. */
    int c = connect4("127.0.0.1", port, 0), a = accept(l, NULL, NULL);
    CHECK(write(c, "unread", 6) == 6);
    close(a);
    SHOW("read after a reset", read(c, b, sizeof b));
    printf("read again %zd\n", read(c, b, sizeof b));
    close(c);
    /* SO_LINGER 0: close resets. */
    c = connect4("127.0.0.1", port, 0);
    a = accept(l, NULL, NULL);
    struct linger lg = { 1, 0 };
    CHECK(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    socklen_t ll = sizeof lg;
    memset(&lg, 0, sizeof lg);
    getsockopt(a, SOL_SOCKET, SO_LINGER, &lg, &ll);
    printf("SO_LINGER %d %d\n", lg.l_onoff, lg.l_linger);
    close(a);
    SHOW("read after linger-0 close", read(c, b, sizeof b));
    close(c);
    /* Writes after the peer closed: the first goes out, the peer's reset answers it. */
    c = connect4("127.0.0.1", port, 0);
    a = accept(l, NULL, NULL);
    close(a);
    printf("read at EOF %zd\n", read(c, b, sizeof b));
    int before = sigpipes;
    SHOW("first write after the peer closed", write(c, "x", 1));
    struct pollfd pf = { .fd = c, .events = POLLIN | POLLOUT };
    poll(&pf, 1, 5000);
    SHOW("second write", write(c, "x", 1));
    SHOW("third write", write(c, "x", 1));
    printf("SIGPIPEs: %d\n", sigpipes - before);
    close(c);
    /* A listener closed with a connection pending resets it. */
    c = connect4("127.0.0.1", port, 0);
    close(l);
    SHOW("read after the listener closed", read(c, b, sizeof b));
    close(c);
}

static void test_binding(void) {
    stage = "binding";
    printf("== binding\n");
    int port, l = listener(AF_INET, "127.0.0.1", &port);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sin4("127.0.0.1", port);
    SHOW("bind a listening port", bind(s, (struct sockaddr *)&a, sizeof a));
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    SHOW("bind it with SO_REUSEADDR", bind(s, (struct sockaddr *)&a, sizeof a));
    a = sin4("0.0.0.0", port);
    SHOW("bind the wildcard on it", bind(s, (struct sockaddr *)&a, sizeof a));
    a = sin4("127.0.0.2", port);
    SHOW("bind 127.0.0.2 on it", bind(s, (struct sockaddr *)&a, sizeof a));
    show_name("bound", s, 0);
    close(s);
    close(l);
    /* Both with SO_REUSEADDR and neither listening: allowed. */
    int x = socket(AF_INET, SOCK_STREAM, 0), y = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(x, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(y, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    a = sin4("127.0.0.1", 0);
    CHECK(bind(x, (struct sockaddr *)&a, sizeof a) == 0);
    a = sin4("127.0.0.1", local_port(x));
    SHOW("two SO_REUSEADDR binds", bind(y, (struct sockaddr *)&a, sizeof a));
    SHOW("listen on the first", listen(x, 1));
    SHOW("listen on the second", listen(y, 1));
    close(x);
    close(y);
    /* SO_REUSEPORT listeners share a port; a connection reaches one of them. */
    x = socket(AF_INET, SOCK_STREAM, 0);
    y = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(x, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(y, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    a = sin4("127.0.0.1", 0);
    CHECK(bind(x, (struct sockaddr *)&a, sizeof a) == 0);
    a = sin4("127.0.0.1", local_port(x));
    SHOW("SO_REUSEPORT bind", bind(y, (struct sockaddr *)&a, sizeof a));
    CHECK(listen(x, 4) == 0 && listen(y, 4) == 0);
    int c = connect4("127.0.0.1", local_port(x), 0);
    struct pollfd pf[2] = { { .fd = x, .events = POLLIN }, { .fd = y, .events = POLLIN } };
    int n = poll(pf, 2, 5000);
    printf("reuseport listeners ready: %d\n", n);
    close(c);
    close(x);
    close(y);
    /* Listen without bind: an ephemeral port on the wildcard. */
    s = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("listen unbound", listen(s, 1));
    show_name("its name", s, 0);
    printf("ephemeral: %d\n", ephemeral(local_port(s)));
    c = connect4("127.0.0.1", local_port(s), 0);
    printf("connect to it: %s\n", c >= 0 ? "ok" : errno_name(errno));
    close(c);
    close(s);
    /* A bound client keeps its address. */
    c = socket(AF_INET, SOCK_STREAM, 0);
    port = 0;
    l = listener(AF_INET, "0.0.0.0", &port);
    a = sin4("127.0.0.3", 0);
    CHECK(bind(c, (struct sockaddr *)&a, sizeof a) == 0);
    a = sin4("127.0.0.1", port);
    SHOW("connect from 127.0.0.3", connect(c, (struct sockaddr *)&a, sizeof a));
    int acc = accept(l, NULL, NULL);
    show_name("server sees", acc, 1);
    show_name("server is", acc, 0);
    close(acc);
    close(c);
    close(l);
}

static void test_ipv6(void) {
    stage = "ipv6";
    printf("== ipv6\n");
    int port, l = listener(AF_INET6, "::", &port);
    show_name("v6 listener", l, 0);
    int c = connect4("127.0.0.1", port, 0);
    printf("v4 client to the dual-stack listener: %s\n", c >= 0 ? "ok" : errno_name(errno));
    struct sockaddr_storage pa;
    socklen_t pl = sizeof pa;
    int a = accept(l, (struct sockaddr *)&pa, &pl);
    printf("accepted from %s len %u\n", addr_str(&pa), (unsigned)pl);
    show_name("accepted name", a, 0);
    close(a);
    close(c);
    int c6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = sin6("::1", port);
    SHOW("v6 client to ::1", connect(c6, (struct sockaddr *)&a6, sizeof a6));
    show_name("v6 client", c6, 0);
    show_name("v6 client's peer", c6, 1);
    a = accept(l, NULL, NULL);
    show_name("v6 accepted peer", a, 1);
    close(a);
    close(c6);
    c6 = socket(AF_INET6, SOCK_STREAM, 0);
    a6 = sin6("::ffff:127.0.0.1", port);
    SHOW("v6 client to a mapped address", connect(c6, (struct sockaddr *)&a6, sizeof a6));
    show_name("its name", c6, 0);
    a = accept(l, NULL, NULL);
    close(a);
    close(c6);
    close(l);
    /* IPV6_V6ONLY: the IPv4 side of the port is someone else's. */
    int s = socket(AF_INET6, SOCK_STREAM, 0), one = 1, v = -1;
    socklen_t vl = sizeof v;
    getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl);
    printf("IPV6_V6ONLY default %d\n", v);
    CHECK(setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0);
    a6 = sin6("::", 0);
    CHECK(bind(s, (struct sockaddr *)&a6, sizeof a6) == 0);
    SHOW("IPV6_V6ONLY after bind", setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one));
    CHECK(listen(s, 1) == 0);
    port = local_port(s);
    SHOW("v4 connect to a v6-only listener", connect4("127.0.0.1", port, 0));
    int s4 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a4 = sin4("0.0.0.0", port);
    SHOW("v4 bind beside it", bind(s4, (struct sockaddr *)&a4, sizeof a4));
    close(s4);
    int m = socket(AF_INET6, SOCK_STREAM, 0);
    setsockopt(m, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    a6 = sin6("::ffff:127.0.0.1", 0);
    SHOW("v6-only bind of a mapped address", bind(m, (struct sockaddr *)&a6, sizeof a6));
    close(m);
    close(s);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    a6 = sin6("::1", 0);
    SHOW("short sockaddr_in6", bind(s, (struct sockaddr *)&a6, 23));
    SHOW("RFC 2133 sockaddr_in6", bind(s, (struct sockaddr *)&a6, 24));
    a6 = sin6("2001:db8::1", 0);
    close(s);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    SHOW("bind a non-local v6 address", bind(s, (struct sockaddr *)&a6, sizeof a6));
    close(s);
}

static void test_udp(void) {
    stage = "udp";
    printf("== udp\n");
    int u = socket(AF_INET, SOCK_DGRAM, 0), v = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = sin4("127.0.0.1", 0);
    CHECK(bind(u, (struct sockaddr *)&a, sizeof a) == 0);
    a = sin4("127.0.0.1", local_port(u));
    show_name("unbound sender", v, 0);
    SHOW("send unconnected without address", send(v, "x", 1, 0));
    SHOW("sendto", sendto(v, "one", 3, 0, (struct sockaddr *)&a, sizeof a));
    SHOW("sendto", sendto(v, "second", 6, 0, (struct sockaddr *)&a, sizeof a));
    printf("sender got port, ephemeral: %d\n", ephemeral(local_port(v)));
    show_name("the sender stays on the wildcard", v, 0);
    int n = 0;
    ioctl(u, FIONREAD, &n);
    printf("FIONREAD (next datagram) %d\n", n);
    char b[64] = { 0 };
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t got = recvfrom(u, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
    printf("recvfrom %zd '%s'", got, b);
    printf(" from %s, the sender's port: %d\n", addr_str(&from), port_of(&from) == local_port(v));
    struct iovec iov = { b, 3 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    got = recvmsg(u, &mh, 0);
    printf("recvmsg into 3 bytes %zd flags %#x\n", got, mh.msg_flags);
    SHOW("recv nothing (DONTWAIT)", recv(u, b, sizeof b, MSG_DONTWAIT));
    SHOW("send zero bytes", sendto(v, "", 0, 0, (struct sockaddr *)&a, sizeof a));
    printf("recv the empty datagram %zd\n", recv(u, b, sizeof b, 0));
    static char big[65508];
    SHOW("65507 bytes", sendto(v, big, 65507, 0, (struct sockaddr *)&a, sizeof a));
    SHOW("65508 bytes", sendto(v, big, 65508, 0, (struct sockaddr *)&a, sizeof a));
    printf("recv big %zd\n", recv(u, big, sizeof big, 0));
    struct sockaddr_in z = sin4("127.0.0.1", 0);
    SHOW("sendto port 0", sendto(v, "x", 1, 0, (struct sockaddr *)&z, sizeof z));
    /* Connected: the default destination, and only that peer's datagrams. */
    int w = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in va = sin4("127.0.0.1", local_port(v));
    SHOW("connect", connect(u, (struct sockaddr *)&va, sizeof va));
    show_name("connected peer", u, 1);
    SHOW("stranger sends", sendto(w, "stranger", 8, 0, (struct sockaddr *)&a, sizeof a));
    SHOW("peer sends", sendto(v, "friend", 6, 0, (struct sockaddr *)&a, sizeof a));
    memset(b, 0, sizeof b);
    printf("connected recv %zd '%s'\n", recv(u, b, sizeof b, 0), b);
    SHOW("send to the peer", send(u, "reply", 5, 0));
    memset(b, 0, sizeof b);
    printf("peer got %zd '%s'\n", recv(v, b, sizeof b, 0), b);
    struct sockaddr_in unspec = { .sin_family = AF_UNSPEC };
    SHOW("disconnect", connect(u, (struct sockaddr *)&unspec, sizeof unspec));
    SHOW("getpeername after", getpeername(u, (struct sockaddr *)&va, &(socklen_t){ sizeof va }));
    close(w);
    /* A connected socket is told the peer's port is unreachable. */
    int d = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in dead = sin4("127.0.0.1", dead_port(SOCK_DGRAM));
    CHECK(connect(d, (struct sockaddr *)&dead, sizeof dead) == 0);
    SHOW("send to a dead port", send(d, "x", 1, 0));
    struct pollfd pf = { .fd = d, .events = POLLIN };
    show_poll("unreachable", &pf);
    SHOW("recv", recv(d, b, sizeof b, MSG_DONTWAIT));
    SHOW("recv again", recv(d, b, sizeof b, MSG_DONTWAIT));
    close(d);
    /* IPv6 and the dual stack. */
    int u6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a6 = sin6("::", 0);
    CHECK(bind(u6, (struct sockaddr *)&a6, sizeof a6) == 0);
    struct sockaddr_in to4 = sin4("127.0.0.1", local_port(u6));
    SHOW("v4 to the dual-stack socket", sendto(v, "four", 4, 0, (struct sockaddr *)&to4, sizeof to4));
    fl = sizeof from;
    memset(b, 0, sizeof b);
    got = recvfrom(u6, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
    printf("v6 got %zd '%s'", got, b);
    printf(" from %s len %u\n", addr_str(&from), (unsigned)fl);
    int v6 = socket(AF_INET6, SOCK_DGRAM, 0);
    a6 = sin6("::1", local_port(u6));
    SHOW("v6 to ::1", sendto(v6, "six", 3, 0, (struct sockaddr *)&a6, sizeof a6));
    fl = sizeof from;
    got = recvfrom(u6, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
    printf("v6 got %zd from %s\n", got, addr_str(&from));
    int m6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 mapped = sin6("::ffff:127.0.0.1", local_port(u6));
    SHOW("v6 to a mapped address", sendto(m6, "m", 1, 0, (struct sockaddr *)&mapped, sizeof mapped));
    show_name("v6 sender after a mapped send", m6, 0);
    fl = sizeof from;
    got = recvfrom(u6, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
    printf("dual-stack socket got %zd from %s\n", got, addr_str(&from));
    close(m6);
    static char big6[65528];
    SHOW("65527 bytes over v6", sendto(v6, big6, 65527, 0, (struct sockaddr *)&a6, sizeof a6));
    SHOW("65528 bytes over v6", sendto(v6, big6, 65528, 0, (struct sockaddr *)&a6, sizeof a6));
    close(v6);
    close(u6);
    close(u);
    close(v);
}

/* Receives one datagram on `fd` and prints its control messages. */
static void show_cmsgs(const char *what, int fd) {
    char data[16], ctl[256];
    struct iovec iov = { data, sizeof data };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    ssize_t n = recvmsg(fd, &mh, 0);
    printf("%s: %zd bytes, flags %#x\n", what, n, mh.msg_flags);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        size_t len = c->cmsg_len - CMSG_LEN(0);
        printf("  cmsg level %d type %d len %zu:", c->cmsg_level, c->cmsg_type, len);
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            char ip[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, &pi.ipi6_addr, ip, sizeof ip);
            printf(" %s ifindex %u\n", ip, pi.ipi6_ifindex);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &pi.ipi_spec_dst, a, sizeof a);
            inet_ntop(AF_INET, &pi.ipi_addr, b, sizeof b);
            printf(" ifindex %d spec_dst %s addr %s\n", pi.ipi_ifindex, a, b);
        } else if (len == 4) {
            int v;
            memcpy(&v, CMSG_DATA(c), 4);
            printf(" %d\n", v);
        } else {
            for (size_t i = 0; i < len; i++) printf(" %02x", CMSG_DATA(c)[i]);
            printf("\n");
        }
    }
}

/* A datagram sent with one control message of (level, type, int value). */
static void send_with(int fd, const void *to, socklen_t tolen, int level, int type, int v) {
    char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
    struct iovec iov = { "x", 1 };
    struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl, .msg_controllen = sizeof ctl };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &v, sizeof v);
    printf("sendmsg with %d/%d = %d: %s\n", level, type, v, err(sendmsg(fd, &mh, 0)));
}

/* IP-level ancillary data: hop limits/TTLs, traffic classes/TOS and packet info, from the
 * sender's options and from its control messages; UDP-Lite; sendfile into a TCP socket. */
static void test_ancillary(void) {
    stage = "ancillary";
    printf("== ancillary\n");
    int one = 1, r = socket(AF_INET6, SOCK_DGRAM, 0), w = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a6 = sin6("::1", 0);
    CHECK(bind(r, (struct sockaddr *)&a6, sizeof a6) == 0);
    a6.sin6_port = htons(local_port(r));
    CHECK(setsockopt(r, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) == 0);
    CHECK(setsockopt(r, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) == 0);
    CHECK(setsockopt(r, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof one) == 0);
    int hops = 7, bad = 256, v = 0;
    SHOW("IPV6_UNICAST_HOPS 7", setsockopt(w, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops));
    SHOW("IPV6_UNICAST_HOPS 256", setsockopt(w, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &bad, sizeof bad));
    CHECK(sendto(w, "x", 1, 0, (struct sockaddr *)&a6, sizeof a6) == 1);
    show_cmsgs("v6 with the sender's hop limit", r);
    send_with(w, &a6, sizeof a6, IPPROTO_IPV6, IPV6_TCLASS, 42);
    show_cmsgs("v6 with a class", r);
    send_with(w, &a6, sizeof a6, IPPROTO_IPV6, IPV6_HOPLIMIT, 2);
    show_cmsgs("v6 with a hop limit", r);
    send_with(w, &a6, sizeof a6, IPPROTO_IPV6, IPV6_HOPLIMIT, 300);
    hops = -1;
    setsockopt(w, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops);
    socklen_t l = sizeof v;
    getsockopt(w, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, &l);
    printf("IPV6_UNICAST_HOPS after -1: %d\n", v);
    close(r);
    close(w);
    r = socket(AF_INET, SOCK_DGRAM, 0);
    w = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = sin4("127.0.0.1", 0);
    CHECK(bind(r, (struct sockaddr *)&a, sizeof a) == 0);
    a.sin_port = htons(local_port(r));
    CHECK(setsockopt(r, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) == 0);
    CHECK(setsockopt(r, IPPROTO_IP, IP_RECVTTL, &one, sizeof one) == 0);
    CHECK(setsockopt(r, IPPROTO_IP, IP_RECVTOS, &one, sizeof one) == 0);
    int ttl = 9;
    SHOW("IP_TTL 9", setsockopt(w, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl));
    SHOW("IP_TTL 0", setsockopt(w, IPPROTO_IP, IP_TTL, &(int){ 0 }, sizeof(int)));
    CHECK(sendto(w, "x", 1, 0, (struct sockaddr *)&a, sizeof a) == 1);
    show_cmsgs("v4 with the sender's TTL", r);
    send_with(w, &a, sizeof a, IPPROTO_IP, IP_TOS, 0x20);
    show_cmsgs("v4 with a TOS", r);
    send_with(w, &a, sizeof a, IPPROTO_IP, IP_TTL, 3);
    show_cmsgs("v4 with a TTL", r);
    /* A truncated control buffer: MSG_CTRUNC. */
    CHECK(sendto(w, "x", 1, 0, (struct sockaddr *)&a, sizeof a) == 1);
    char data[4], ctl[CMSG_SPACE(4)];
    struct iovec iov = { data, sizeof data };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    ssize_t got1 = recvmsg(r, &mh, 0);
    printf("recvmsg with room for one cmsg: %zd flags %#x controllen %zu\n", got1, mh.msg_flags, (size_t)mh.msg_controllen);
    close(r);
    close(w);
    /* UDP-Lite: a port space of its own. */
    int u = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
    printf("udplite socket: %s\n", u >= 0 ? "ok" : errno_name(errno));
    if (u >= 0) {
        a = sin4("127.0.0.1", 0);
        CHECK(bind(u, (struct sockaddr *)&a, sizeof a) == 0);
        a.sin_port = htons(local_port(u));
        int p = 0;
        l = sizeof p;
        getsockopt(u, SOL_SOCKET, SO_PROTOCOL, &p, &l);
        printf("udplite SO_PROTOCOL %d\n", p);
        int plain = socket(AF_INET, SOCK_DGRAM, 0);
        SHOW("plain UDP bind on the UDP-Lite port", bind(plain, (struct sockaddr *)&a, sizeof a));
        int lw = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
        CHECK(sendto(lw, "lite", 4, 0, (struct sockaddr *)&a, sizeof a) == 4);
        char b[8] = { 0 };
        printf("udplite got %zd '%s'\n", recv(u, b, sizeof b, 0), b);
        close(plain);
        close(lw);
        close(u);
    }
    /* sendfile from a file into a TCP connection. */
    char path[] = "/tmp/inet_sendfile.XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0);
    unlink(path);
    static char blob[100000];
    long want = 0;
    for (size_t i = 0; i < sizeof blob; i++) {
        blob[i] = (char)(i * 13);
        want += (unsigned char)blob[i];
    }
    CHECK(write(f, blob, sizeof blob) == sizeof blob);
    int port, ls = listener(AF_INET, "127.0.0.1", &port);
    int c = connect4("127.0.0.1", port, 0), s = accept(ls, NULL, NULL);
    off_t off = 1000;
    long sent = 0;
    while (sent < (long)sizeof blob - 1000) {
        ssize_t n = sendfile(c, f, &off, sizeof blob);
        if (n <= 0) break;
        sent += n;
    }
    close(c);
    long got = 0, sum = 0;
    ssize_t n;
    static char in[65536];
    while ((n = read(s, in, sizeof in)) > 0) {
        got += n;
        for (ssize_t i = 0; i < n; i++) sum += (unsigned char)in[i];
    }
    for (int i = 0; i < 1000; i++) want -= (unsigned char)blob[i];
    printf("sendfile: %ld sent, %ld received, offset %ld, sum right: %d\n", sent, got, (long)off, sum == want);
    close(s);
    close(ls);
    close(f);
}

static void test_options(void) {
    stage = "options";
    printf("== options\n");
    int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET6, SOCK_DGRAM, 0), v;
    int t6 = socket(AF_INET6, SOCK_STREAM, 0);
    socklen_t l;
    struct { const char *name; int fd, level, opt; } opts[] = {
        { "tcp SO_TYPE", t, SOL_SOCKET, SO_TYPE }, { "tcp SO_DOMAIN", t, SOL_SOCKET, SO_DOMAIN },
        { "tcp SO_PROTOCOL", t, SOL_SOCKET, SO_PROTOCOL }, { "udp SO_TYPE", u, SOL_SOCKET, SO_TYPE },
        { "udp SO_DOMAIN", u, SOL_SOCKET, SO_DOMAIN }, { "udp SO_PROTOCOL", u, SOL_SOCKET, SO_PROTOCOL },
        { "SO_REUSEADDR", t, SOL_SOCKET, SO_REUSEADDR }, { "SO_KEEPALIVE", t, SOL_SOCKET, SO_KEEPALIVE },
        { "SO_ACCEPTCONN", t, SOL_SOCKET, SO_ACCEPTCONN }, { "SO_ERROR", t, SOL_SOCKET, SO_ERROR },
        { "TCP_NODELAY", t, IPPROTO_TCP, TCP_NODELAY }, { "TCP_KEEPIDLE", t, IPPROTO_TCP, TCP_KEEPIDLE },
        { "TCP_KEEPINTVL", t, IPPROTO_TCP, TCP_KEEPINTVL }, { "TCP_KEEPCNT", t, IPPROTO_TCP, TCP_KEEPCNT },
        { "IP_TTL", t, IPPROTO_IP, IP_TTL }, { "IP_TOS", t, IPPROTO_IP, IP_TOS },
        { "udp IPV6_UNICAST_HOPS", u, IPPROTO_IPV6, IPV6_UNICAST_HOPS },
        { "TCP_NODELAY on UDP", u, IPPROTO_TCP, TCP_NODELAY }, { "IPV6_V6ONLY on v4", t, IPPROTO_IPV6, IPV6_V6ONLY },
        { "unknown TCP option", t, IPPROTO_TCP, 999 }, { "unknown level", t, 12345, 1 },
        { "v6 tcp IP_TTL", t6, IPPROTO_IP, IP_TTL }, { "v6 tcp unknown level", t6, 12345, 1 },
        { "v6 tcp IPV6_V6ONLY", t6, IPPROTO_IPV6, IPV6_V6ONLY }, { "v6 udp IP_TOS", u, IPPROTO_IP, IP_TOS },
        { "v6 udp unknown level", u, 12345, 1 }, { "udp4 unknown level", socket(AF_INET, SOCK_DGRAM, 0), 12345, 1 },
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        v = -1;
        l = sizeof v;
        if (getsockopt(opts[i].fd, opts[i].level, opts[i].opt, &v, &l) < 0)
            printf("%s: %s\n", opts[i].name, errno_name(errno));
        else
            printf("%s: %d (len %u)\n", opts[i].name, v, (unsigned)l);
    }
    int one = 1, seven = 7;
    SHOW("set TCP_NODELAY", setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &seven, sizeof seven));
    SHOW("set SO_KEEPALIVE", setsockopt(t, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one));
    SHOW("set TCP_KEEPIDLE", setsockopt(t, IPPROTO_TCP, TCP_KEEPIDLE, &seven, sizeof seven));
    SHOW("set IP_TOS", setsockopt(t, IPPROTO_IP, IP_TOS, &(int){ 0x10 }, sizeof(int)));
    SHOW("set an unknown TCP option", setsockopt(t, IPPROTO_TCP, 999, &one, sizeof one));
    SHOW("set at an unknown level", setsockopt(t, 12345, 1, &one, sizeof one));
    SHOW("set short", setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &one, 2));
    SHOW("v6 set at an unknown level", setsockopt(t6, 12345, 1, &one, sizeof one));
    SHOW("v4 set at the IPv6 level", setsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one));
    int checks[][2] = { { IPPROTO_TCP, TCP_NODELAY }, { SOL_SOCKET, SO_KEEPALIVE }, { IPPROTO_TCP, TCP_KEEPIDLE }, { IPPROTO_IP, IP_TOS } };
    for (int i = 0; i < 4; i++) {
        l = sizeof v;
        getsockopt(t, checks[i][0], checks[i][1], &v, &l);
        printf("read back %d/%d: %d\n", checks[i][0], checks[i][1], v);
    }
    close(t);
    close(t6);
    close(u);
}

static int xfer_port;
static void *thread_client(void *p) {
    (void)p;
    int c = connect4("127.0.0.1", xfer_port, 0);
    static char buf[65536];
    long sum = 0;
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++) sum += (unsigned char)buf[i];
    close(c);
    return (void *)sum;
}

/* 8 MiB from one side to the other: a child process, then a thread. */
static void test_transfer(void) {
    stage = "transfer";
    printf("== transfer\n");
    int port, l = listener(AF_INET, "127.0.0.1", &port);
    static char buf[65536];
    long want = 0;
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] = (char)(i * 7 + 3);
        want += (unsigned char)buf[i];
    }
    want *= 128;
    pid_t pid = fork();
    if (pid == 0) {
        int c = connect4("127.0.0.1", port, 0);
        for (int i = 0; i < 128; i++) {
            size_t off = 0;
            while (off < sizeof buf) {
                ssize_t n = write(c, buf + off, sizeof buf - off);
                if (n <= 0) _exit(1);
                off += n;
            }
        }
        _exit(0);
    }
    int a = accept(l, NULL, NULL);
    long sum = 0, total = 0;
    ssize_t n;
    static char in[65536];
    while ((n = read(a, in, sizeof in)) > 0) {
        total += n;
        for (ssize_t i = 0; i < n; i++) sum += (unsigned char)in[i];
    }
    int st;
    waitpid(pid, &st, 0);
    printf("from a child: %ld bytes, sum right: %d, child exit %d\n", total, sum == want, WEXITSTATUS(st));
    close(a);
    xfer_port = port;
    pthread_t th;
    pthread_create(&th, NULL, thread_client, NULL);
    a = accept(l, NULL, NULL);
    for (int i = 0; i < 128; i++) CHECK(send(a, buf, sizeof buf, MSG_WAITALL) == sizeof buf);
    close(a);
    void *r;
    pthread_join(th, &r);
    printf("to a thread: sum right: %d\n", (long)r == want);
    close(l);
}

/* `isolated`: what the sandbox's network (`--network none`) does not reach. Not compared
 * with a native run (the host has a network and root may open raw sockets): the test
 * expects these lines. */
static void isolated(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sin4("192.0.2.1", 80);
    SHOW("tcp connect elsewhere", connect(s, (struct sockaddr *)&a, sizeof a));
    close(s);
    s = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in6 a6 = sin6("2001:db8::1", 80);
    SHOW("tcp6 connect elsewhere", connect(s, (struct sockaddr *)&a6, sizeof a6));
    close(s);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    a = sin4("8.8.8.8", 53);
    SHOW("udp sendto elsewhere", sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a));
    SHOW("udp connect elsewhere", connect(s, (struct sockaddr *)&a, sizeof a));
    close(s);
    SHOW("raw socket", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    SHOW("raw6 socket", socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6));
    SHOW("packet socket", socket(AF_PACKET, SOCK_RAW, 0));
    SHOW("ping socket", socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
    /* The one interface, as glibc's calls (netlink, SIOCGIF*) and netlink itself see it. */
    struct if_nameindex *ni = if_nameindex();
    for (struct if_nameindex *p = ni; p && p->if_index; p++) printf("if_nameindex: %u %s\n", p->if_index, p->if_name);
    if_freenameindex(ni);
    char name[IF_NAMESIZE] = "";
    printf("if_nametoindex lo: %u, eth0: %u, if_indextoname 1: %s\n", if_nametoindex("lo"), if_nametoindex("eth0"),
           if_indextoname(1, name) ? name : errno_name(errno));
    struct ifaddrs *ifa;
    CHECK(getifaddrs(&ifa) == 0);
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        char host[64] = "-";
        int fam = i->ifa_addr ? i->ifa_addr->sa_family : -1;
        if (fam == AF_INET || fam == AF_INET6)
            getnameinfo(i->ifa_addr, fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6), host, sizeof host, NULL, 0, NI_NUMERICHOST);
        printf("getifaddrs: %s family %d flags %#x %s\n", i->ifa_name, fam, i->ifa_flags, host);
    }
    freeifaddrs(ifa);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = { 0 };
    struct ifconf ifc = { .ifc_len = sizeof ifr, .ifc_req = &ifr };
    SHOW("SIOCGIFCONF", ioctl(s, SIOCGIFCONF, &ifc));
    printf("SIOCGIFCONF: %d bytes, %s %s\n", ifc.ifc_len, ifr.ifr_name, inet_ntoa(((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr));
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    SHOW("SIOCGIFFLAGS", ioctl(s, SIOCGIFFLAGS, &ifr));
    printf("flags %#x\n", ifr.ifr_flags);
    SHOW("SIOCGIFMTU", ioctl(s, SIOCGIFMTU, &ifr));
    printf("mtu %d\n", ifr.ifr_mtu);
    SHOW("SIOCSIFMTU", ioctl(s, SIOCSIFMTU, &ifr));
    strcpy(ifr.ifr_name, "eth0");
    SHOW("SIOCGIFFLAGS eth0", ioctl(s, SIOCGIFFLAGS, &ifr));
    close(s);
    SHOW("netlink route", s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
    close(s);
    SHOW("netlink audit", socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT));
    /* The sandbox's UTS names are its own. */
    struct utsname u;
    SHOW("sethostname", sethostname("sandboxed", 9));
    SHOW("setdomainname", setdomainname("example", 7));
    char longname[66];
    memset(longname, 'x', sizeof longname);
    SHOW("sethostname too long", sethostname(longname, 65));
    uname(&u);
    printf("uname: %s %s\n", u.nodename, u.domainname);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "isolated") == 0) {
        isolated();
        return 0;
    }
    signal(SIGPIPE, on_pipe);
    signal(SIGALRM, on_watchdog);
    alarm(50);
    test_tcp_basic();
    test_errors();
    test_nonblocking();
    test_resets();
    test_binding();
    test_ipv6();
    test_udp();
    test_ancillary();
    test_options();
    test_transfer();
    printf("done\n");
    return 0;
}
