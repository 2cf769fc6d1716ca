/* errname.h — the name of errno as the test programs print it ("ok" for success), so their
 * output compares with a native run's and with literal expectations. */
#ifndef ERRNAME_H
#define ERRNAME_H
#include <errno.h>
#include <string.h>

static const char *err(long r) {
    if (r >= 0)
        return "ok";
    switch (errno) {
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EAGAIN: return "EAGAIN";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case E2BIG: return "E2BIG";
    case EFBIG: return "EFBIG";
    case ERANGE: return "ERANGE";
    case EIDRM: return "EIDRM";
    case EINTR: return "EINTR";
    case ENOMSG: return "ENOMSG";
    case ENOSPC: return "ENOSPC";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOSYS: return "ENOSYS";
    default: return strerror(errno);
    }
}
#endif
