# Python's threading as programs use it: Lock, RLock, Condition, Event, Semaphore, Barrier,
# queue.Queue producers/consumers, concurrent.futures.ThreadPoolExecutor map, threading.Timer,
# thread-local data, a daemon thread left running at exit, and an exception in a thread.
# Stable output: results are printed by the main thread after the joins, in a fixed order.
import concurrent.futures
import os
import queue
import signal
import sys
import threading
import time

signal.alarm(20)  # a hang ends as SIGALRM, not a stuck test

# Lock: a shared counter.
lock = threading.Lock()
count = 0


def add(n):
    global count
    for _ in range(n):
        with lock:
            count += 1


ts = [threading.Thread(target=add, args=(5000,)) for _ in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("lock count", count)

# RLock taken twice by one thread; another thread waits for it.
rl = threading.RLock()
order = []
with rl:
    with rl:
        t = threading.Thread(target=lambda: (rl.acquire(), order.append("other"), rl.release()))
        t.start()
        time.sleep(0.02)
        order.append("owner")
t.join()
print("rlock order", order)

# Condition: a bounded buffer.
cond = threading.Condition()
buf, done, got = [], [False], []


def produce():
    for i in range(200):
        with cond:
            while len(buf) >= 3:
                cond.wait()
            buf.append(i)
            cond.notify_all()
    with cond:
        done[0] = True
        cond.notify_all()


def consume():
    while True:
        with cond:
            while not buf and not done[0]:
                cond.wait()
            if not buf:
                return
            got.append(buf.pop(0))
            cond.notify_all()


ts = [threading.Thread(target=produce)] + [threading.Thread(target=consume) for _ in range(2)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("condition", len(got), sum(got), sorted(got) == list(range(200)))

# Event, Semaphore, Barrier.
ev = threading.Event()
seen = []
w = threading.Thread(target=lambda: seen.append(ev.wait(5)))
w.start()
time.sleep(0.02)
ev.set()
w.join()
print("event", seen, ev.wait(0))
print("event timeout", threading.Event().wait(0.02))
sem = threading.BoundedSemaphore(2)
inside, peak = [0], [0]
slock = threading.Lock()


def limited():
    with sem:
        with slock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.005)
        with slock:
            inside[0] -= 1


ts = [threading.Thread(target=limited) for _ in range(6)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("semaphore peak <= 2", peak[0] <= 2)
bar = threading.Barrier(3)
ids = []
ts = [threading.Thread(target=lambda: ids.append(bar.wait(5))) for _ in range(3)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("barrier", sorted(ids))

# queue.Queue with sentinels.
q, results = queue.Queue(maxsize=5), queue.Queue()


def worker():
    while True:
        item = q.get()
        if item is None:
            q.task_done()
            return
        results.put(item * item)
        q.task_done()


ws = [threading.Thread(target=worker) for _ in range(3)]
for w in ws:
    w.start()
for i in range(100):
    q.put(i)
for _ in ws:
    q.put(None)
q.join()
for w in ws:
    w.join()
out = []
while not results.empty():
    out.append(results.get())
print("queue", len(out), sum(out))

# ThreadPoolExecutor: map keeps order; submit/as_completed; an exception comes back.
with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
    print("pool map", list(ex.map(lambda x: x * 3, range(10))))
    futs = [ex.submit(pow, 2, i) for i in range(8)]
    print("pool submit", sorted(f.result() for f in concurrent.futures.as_completed(futs)))
    bad = ex.submit(lambda: 1 / 0)
    print("pool exception", type(bad.exception()).__name__)

# Timer fires once; a cancelled one does not.
fired = []
tm = threading.Timer(0.02, lambda: fired.append("timer"))
tm.start()
tm2 = threading.Timer(5, lambda: fired.append("cancelled"))
tm2.start()
tm2.cancel()
tm.join()
tm2.join()
print("timer", fired)

# Thread-local data; ident and native_id; the thread count.
local = threading.local()
local.v = "main"
vals = {}


def loc(i):
    local.v = i
    time.sleep(0.005)
    vals[i] = (local.v, threading.get_native_id() != os.getpid(), os.getpid())


ts = [threading.Thread(target=loc, args=(i,)) for i in range(3)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("local", local.v, [vals[i][0] for i in range(3)])
print("native ids differ from pid", all(vals[i][1] for i in range(3)))
print("getpid same", all(vals[i][2] == os.getpid() for i in range(3)))
print("main native id is pid", threading.get_native_id() == os.getpid())

# An exception in a thread goes to threading.excepthook; the process goes on.
caught = []
threading.excepthook = lambda a: caught.append(a.exc_type.__name__)
t = threading.Thread(target=lambda: [][1])
t.start()
t.join()
print("excepthook", caught)

# A daemon thread still blocked at exit does not keep the process alive.
stop = threading.Event()
d = threading.Thread(target=stop.wait, daemon=True)
d.start()
print("active", threading.active_count())
print("daemon alive at exit", d.is_alive())
sys.stdout.flush()
