"""Ownership in the overlay: chown/fchown/lchown of files, directories and symlinks made in
the sandbox and of host ones (copied up, keeping their data, target and entries), the set-ID
bits a chown drops, chmod through a symlink, chmod of a host directory (its mtime stays). argv[1]: a host directory with hf (a file), hl
(a symlink to it) and hd/x."""
import os, sys, tempfile
d = tempfile.mkdtemp(dir="/tmp")
host = sys.argv[1]
def show(p, follow=True):
    st = os.stat(p) if follow else os.lstat(p)
    print(p.replace(d, "D").replace(host, "H"), oct(st.st_mode), st.st_uid, st.st_gid)
f = os.path.join(d, "f"); open(f, "w").close()
os.chmod(f, 0o6755); os.chown(f, 5, 6); show(f)
os.chown(f, -1, 9); show(f)
fd = os.open(f, os.O_RDONLY); os.fchown(fd, 11, -1); os.close(fd); show(f)
sub = os.path.join(d, "sub"); os.mkdir(sub); os.chmod(sub, 0o3755); os.chown(sub, 1, 2); show(sub)
l = os.path.join(d, "l"); os.symlink("f", l); os.lchown(l, 3, 4); show(l, False); show(l)
os.chown(l, 21, 22); show(l, False); show(f)
hf, hl, hd = (os.path.join(host, n) for n in ("hf", "hl", "hd"))
show(hf); show(hl, False); show(hd)
os.chown(hl, 7, 8); show(hl, False); show(hf); print("content", open(hf).read())
os.lchown(hl, 9, 10); show(hl, False); print("readlink", os.readlink(hl))
m = os.stat(hd).st_mtime_ns; os.chmod(hd, 0o750); show(hd)
print("chmod keeps the directory's mtime", os.stat(hd).st_mtime_ns == m)
os.chown(hd, 12, 13); show(hd); print("listing", sorted(os.listdir(hd)))
os.chmod(hl, 0o600); show(hl, False); show(hf)
import shutil
shutil.rmtree(d)
