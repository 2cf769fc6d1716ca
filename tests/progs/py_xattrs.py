"""Extended attributes (user.*) of files and directories the sandbox makes and of host ones
(set copies them up), by path, through symlinks and not, by descriptor; flags, sizes and the
errors, as natively. argv[1]: a host directory with hf (a file) and hl (a symlink to it)."""
import errno, os, sys, tempfile, shutil

host = sys.argv[1]
d = tempfile.mkdtemp(dir="/tmp")

def tryit(what, f):
    try:
        r = f()
        print(what, "->", r if not isinstance(r, list) else sorted(r))
    except OSError as e:
        print(what, "->", errno.errorcode[e.errno])

f = os.path.join(d, "f"); open(f, "w").close()
sub = os.path.join(d, "sub"); os.mkdir(sub)
l = os.path.join(d, "l"); os.symlink("f", l)
tryit("list empty", lambda: os.listxattr(f))
tryit("get missing", lambda: os.getxattr(f, "user.a"))
tryit("set", lambda: os.setxattr(f, "user.a", b"1"))
tryit("set CREATE existing", lambda: os.setxattr(f, "user.a", b"2", os.XATTR_CREATE))
tryit("set REPLACE missing", lambda: os.setxattr(f, "user.b", b"2", os.XATTR_REPLACE))
tryit("set REPLACE", lambda: os.setxattr(f, "user.a", b"three", os.XATTR_REPLACE))
tryit("get", lambda: os.getxattr(f, "user.a"))
tryit("set empty value", lambda: os.setxattr(f, "user.empty", b""))
tryit("get empty value", lambda: os.getxattr(f, "user.empty"))
tryit("list", lambda: os.listxattr(f))
tryit("through the symlink", lambda: os.getxattr(l, "user.a"))
tryit("the symlink itself", lambda: os.listxattr(l, follow_symlinks=False))
tryit("set on the symlink itself", lambda: os.setxattr(l, "user.x", b"1", follow_symlinks=False))
tryit("trusted namespace", lambda: os.getxattr(f, "trusted.x"))
tryit("no namespace", lambda: os.setxattr(f, "plain", b"1"))
tryit("long name", lambda: os.setxattr(f, "user." + "n" * 251, b"1"))
tryit("big value", lambda: os.setxattr(f, "user.big", b"v" * 65537))
tryit("set on a directory", lambda: os.setxattr(sub, "user.d", b"dir"))
tryit("get on a directory", lambda: os.getxattr(sub, "user.d"))
fd = os.open(f, os.O_RDONLY)
tryit("by descriptor", lambda: os.getxattr(fd, "user.a"))
tryit("set by descriptor", lambda: os.setxattr(fd, "user.fd", b"x"))
os.unlink(f)
tryit("on an unlinked file's descriptor", lambda: os.listxattr(fd))
os.close(fd)
tryit("remove missing", lambda: os.removexattr(sub, "user.nope"))
tryit("remove", lambda: os.removexattr(sub, "user.d"))
tryit("after remove", lambda: os.listxattr(sub))
hf, hl = os.path.join(host, "hf"), os.path.join(host, "hl")
tryit("host file list", lambda: os.listxattr(hf))
tryit("host file set", lambda: os.setxattr(hf, "user.h", b"host"))
tryit("host file get", lambda: os.getxattr(hf, "user.h"))
tryit("host file content", lambda: open(hf).read())
tryit("host symlink through", lambda: os.getxattr(hl, "user.h"))
tryit("missing path", lambda: os.listxattr(os.path.join(d, "none")))
r, w = os.pipe()
tryit("pipe", lambda: os.setxattr(w, "user.p", b"1"))
shutil.rmtree(d)
