/* errname.h — the name of an errno value as the test programs print it, so their output
 * compares with a native run's and with literal expectations: errno_name(e) ("E<n>" for one
 * not listed), err(r) ("ok" for a result >= 0, else errno's name). */
#ifndef ERRNAME_H
#define ERRNAME_H
#include <errno.h>
#include <stdio.h>

static const char *errno_name(int e) {
    switch (e) {
#define N(x) case x: return #x;
    N(EPERM) N(ENOENT) N(ESRCH) N(EINTR) N(EIO) N(ENXIO) N(E2BIG) N(ENOEXEC) N(EBADF) N(ECHILD)
    N(EAGAIN) N(ENOMEM) N(EACCES) N(EFAULT) N(EBUSY) N(EEXIST) N(EXDEV) N(ENODEV) N(ENOTDIR)
    N(EISDIR) N(EINVAL) N(ENFILE) N(EMFILE) N(ENOTTY) N(ETXTBSY) N(EFBIG) N(ENOSPC) N(ESPIPE)
    N(EROFS) N(EMLINK) N(EPIPE) N(EDOM) N(ERANGE) N(EDEADLK) N(ENAMETOOLONG) N(ENOSYS)
    N(ENOTEMPTY) N(ELOOP) N(ENOMSG) N(EIDRM) N(EOVERFLOW) N(EBADFD) N(ENOTSOCK)
    N(EDESTADDRREQ) N(EMSGSIZE) N(EPROTOTYPE) N(ENOPROTOOPT) N(EPROTONOSUPPORT) N(ESOCKTNOSUPPORT)
    N(EOPNOTSUPP) N(EAFNOSUPPORT) N(EADDRINUSE) N(EADDRNOTAVAIL) N(ENETUNREACH) N(ECONNABORTED)
    N(ECONNRESET) N(ENOBUFS) N(EISCONN) N(ENOTCONN) N(ETIMEDOUT) N(ECONNREFUSED) N(EALREADY)
    N(EINPROGRESS) N(ESTALE) N(ECANCELED) N(EOWNERDEAD) N(ENOTRECOVERABLE) N(ETOOMANYREFS)
#undef N
    default: {
        static char b[16];
        snprintf(b, sizeof b, "E%d", e);
        return b;
    }
    }
}

__attribute__((unused)) static const char *err(long r) { return r >= 0 ? "ok" : errno_name(errno); }
#endif
