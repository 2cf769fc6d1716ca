"""multiprocessing as real Python programs use it: Pool (map, imap, apply_async, starmap)
under the fork and spawn start methods, Process with a Queue, the synchronization objects
(Lock, RLock, Semaphore, Event, Condition, Barrier: POSIX semaphores in /dev/shm),
shared ctypes (Value, Array: the heap's arena is a file in /dev/shm mapped shared),
shared_memory.SharedMemory (shm_open) between processes, and a Manager (a server process
over a Unix socket). Prints only results, never pids or times."""
import multiprocessing as mp
import os
from multiprocessing import shared_memory


def square(x):
    return x * x


def add(a, b):
    return a + b


def pools(method):
    ctx = mp.get_context(method)
    with ctx.Pool(2) as p:
        print(method, "map:", p.map(square, range(10)))
        print(method, "imap:", list(p.imap(square, range(5))))
        print(method, "starmap:", p.starmap(add, [(1, 2), (3, 4)]))
        r = p.apply_async(square, (12,))
        print(method, "apply_async:", r.get(timeout=30))


def producer(q, n):
    for i in range(n):
        q.put(("item", i))
    q.put(None)


def queue():
    q = mp.Queue()
    p = mp.Process(target=producer, args=(q, 100))
    p.start()
    got = []
    while (item := q.get(timeout=30)) is not None:
        got.append(item[1])
    p.join()
    print("queue: got", len(got), "in order", got == list(range(100)), "exit", p.exitcode)


def bump(counter, lock, n):
    for _ in range(n):
        with lock:
            counter.value += 1


def locks():
    counter = mp.Value("i", 0, lock=False)
    lock = mp.Lock()
    procs = [mp.Process(target=bump, args=(counter, lock, 500)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print("lock: counter", counter.value, "exits", [p.exitcode for p in procs])
    r = mp.RLock()
    with r:
        with r:
            print("rlock: reentered")
    s = mp.Semaphore(2)
    print("semaphore: two", s.acquire(timeout=1), s.acquire(timeout=1),
          "third times out", s.acquire(timeout=0.1))
    s.release()
    bs = mp.BoundedSemaphore(1)
    try:
        bs.release()
        print("bounded semaphore: released past its bound")
    except ValueError:
        print("bounded semaphore: ValueError past its bound")


def waiter(ev, cond, shared, barrier):
    ev.wait(30)
    with cond:
        shared.value = 7
        cond.notify()
    barrier.wait(30)


def events():
    ev = mp.Event()
    cond = mp.Condition()
    shared = mp.Value("i", 0)
    barrier = mp.Barrier(2)
    p = mp.Process(target=waiter, args=(ev, cond, shared, barrier))
    p.start()
    with cond:
        ev.set()
        print("condition: woken", cond.wait_for(lambda: shared.value == 7, timeout=30))
    barrier.wait(30)
    p.join()
    print("event/barrier: exit", p.exitcode, "value", shared.value)


def fill(arr, start):
    for i in range(len(arr)):
        arr[i] = start + i


def sharedctypes():
    arr = mp.Array("d", 1000)
    p = mp.Process(target=fill, args=(arr, 0.5))
    p.start()
    p.join()
    print("array: sum", sum(arr[:]), "first", arr[0], "last", arr[999])
    big = mp.RawArray("b", 8 << 20)  # a heap arena of its own
    p = mp.Process(target=fill_bytes, args=(big,))
    p.start()
    p.join()
    print("raw array 8 MiB: child's bytes", big[0], big[len(big) - 1])


def fill_bytes(arr):
    arr[0] = 1
    arr[len(arr) - 1] = 2


def shm_child(name):
    s = shared_memory.SharedMemory(name=name)
    s.buf[:5] = b"child"
    s.close()


def shared_mem():
    s = shared_memory.SharedMemory(create=True, size=4096)
    s.buf[:6] = b"parent"
    print("shared_memory: in /dev/shm", os.path.exists("/dev/shm/" + s.name), "size", s.size)
    p = mp.Process(target=shm_child, args=(s.name,))
    p.start()
    p.join()
    print("shared_memory: child wrote", bytes(s.buf[:6]), "exit", p.exitcode)
    s.close()
    s.unlink()
    print("shared_memory: unlinked", not os.path.exists("/dev/shm/" + s.name))
    sl = shared_memory.ShareableList([1, 2.5, "three", None])
    print("shareable list:", list(sl))
    sl.shm.close()
    sl.shm.unlink()


def manager():
    with mp.Manager() as m:
        d = m.dict()
        lst = m.list()
        p = mp.Process(target=managed, args=(d, lst))
        p.start()
        p.join()
        print("manager: dict", sorted(d.items()), "list", list(lst), "exit", p.exitcode)


def managed(d, lst):
    d["a"] = 1
    d["b"] = [2, 3]
    lst.extend(["x", "y"])


if __name__ == "__main__":
    mp.set_start_method("fork")
    pools("fork")
    pools("spawn")
    queue()
    locks()
    events()
    sharedctypes()
    shared_mem()
    manager()
    print("active children:", mp.active_children())
