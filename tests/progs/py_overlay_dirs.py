"""Directories made in the overlay, used through descriptors as real programs do:
shutil.rmtree (fd-based: it compares lstat of a path with fstat of the open directory, then
works with dir_fd), tempfile.TemporaryDirectory's cleanup, os.fchdir, os.walk/os.fwalk and
the *at calls relative to an open directory. Nothing printed depends on the temp names."""
import os
import shutil
import tempfile

d = tempfile.mkdtemp()
os.makedirs(os.path.join(d, "a/b/c"))
for p in ("a/f", "a/b/g", "a/b/c/h"):
    with open(os.path.join(d, p), "w") as f:
        f.write(p)
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
print("fstat is lstat:", os.path.samestat(os.fstat(fd), os.lstat(d)))
os.mkdir("made_at", dir_fd=fd)
print("stat at:", os.stat("a/f", dir_fd=fd).st_size, sorted(os.listdir(d)))
os.fchdir(fd)
print("fchdir: cwd is the directory:", os.path.samefile(os.getcwd(), d))
print("fwalk:", sorted((root, sorted(files)) for root, _, files, _ in os.fwalk(".")))
print("walk:", sorted((os.path.relpath(r, d), sorted(f)) for r, _, f in os.walk(d)))
os.chdir("/")
os.close(fd)
shutil.rmtree(d)
print("rmtree:", os.path.exists(d))
with tempfile.TemporaryDirectory() as t:
    os.makedirs(os.path.join(t, "x/y"))
    open(os.path.join(t, "x/y/z"), "w").close()
print("TemporaryDirectory cleaned:", not os.path.exists(t))
# scandir's inode numbers are those stat gives, for entries made here and the host's beside
# them (a directory both have entries in).
with tempfile.TemporaryDirectory() as t:
    os.makedirs(os.path.join(t, "sub"))
    open(os.path.join(t, "f"), "w").close()
    os.symlink("f", os.path.join(t, "l"))
    for where in (t, "/etc"):
        same = all(
            e.inode() == os.stat(e.path, follow_symlinks=False).st_ino for e in os.scandir(where)
        )
        print("scandir inodes are stat's:", same)
    print("'.' is the directory:", os.stat(os.path.join(t, ".")).st_ino == os.stat(t).st_ino)
