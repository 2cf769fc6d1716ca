# Python's selectors (epoll), select.epoll and os.eventfd, as a program uses them: pipes,
# a child waking the parent, timeouts, EOF, an edge-triggered eventfd. Stable output.
import os
import select
import selectors
import time

sel = selectors.DefaultSelector()
print(type(sel).__name__)
r, w = os.pipe()
sel.register(r, selectors.EVENT_READ, "pipe")
print("idle", sel.select(0))
t0 = time.monotonic()
print("timeout", sel.select(0.03), time.monotonic() - t0 >= 0.029)
os.write(w, b"hi")
print("ready", [(k.data, ev) for k, ev in sel.select(1)])
os.read(r, 2)
if os.fork() == 0:
    time.sleep(0.05)
    os.write(w, b"x")
    os._exit(0)
print("woken", [(k.data, ev) for k, ev in sel.select(5)])
os.wait()
sel.modify(r, selectors.EVENT_READ | selectors.EVENT_WRITE, "both")
sel.register(w, selectors.EVENT_WRITE, "w")
print("two", sorted((k.data, ev) for k, ev in sel.select(0)))
sel.unregister(w)
os.close(w)
os.read(r, 1)
print("eof", [(k.data, ev) for k, ev in sel.select(1)])
sel.close()
ep = select.epoll()
e = os.eventfd(0, os.EFD_NONBLOCK)
ep.register(e, select.EPOLLIN | select.EPOLLET)
os.eventfd_write(e, 3)
print("eventfd", ep.poll(0) == [(e, select.EPOLLIN)], os.eventfd_read(e), ep.poll(0))
# A pidfd becomes readable when its process exits (asyncio's PidfdChildWatcher waits so).
sel = selectors.DefaultSelector()
pid = os.fork()
if pid == 0:
    time.sleep(0.05)
    os._exit(7)
pfd = os.pidfd_open(pid)
sel.register(pfd, selectors.EVENT_READ, "child")
print("pidfd running", sel.select(0))
print("pidfd exited", [(k.data, ev) for k, ev in sel.select(5)])
print("status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
