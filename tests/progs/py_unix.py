"""Unix domain sockets as real Python programs use them: socket.socketpair, multiprocessing
Pipe and Listener/Client on an AF_UNIX address, asyncio over a socketpair, fd passing."""
import asyncio
import multiprocessing
import multiprocessing.connection as mpc
import os
import socket
import tempfile


def pair():
    a, b = socket.socketpair()
    a.sendall(b"ping")
    print("socketpair:", b.recv(16), a.family == socket.AF_UNIX, a.type == socket.SOCK_STREAM)
    b.sendall(b"x" * 100000)
    got = 0
    while got < 100000:
        got += len(a.recv(65536))
    print("sendall/recv 100000:", got)
    b.close()
    print("eof:", a.recv(1))
    a.close()


def child_pipe(conn):
    conn.send({"from": "child", "n": [1, 2, 3]})
    conn.send(("child got", conn.recv()))
    conn.close()


def mp_pipe():
    parent, child = multiprocessing.Pipe()
    p = multiprocessing.Process(target=child_pipe, args=(child,))
    p.start()
    print("parent got:", parent.recv())
    parent.send("hello child")
    print(*parent.recv())
    p.join()
    print("child exit:", p.exitcode)


def serve(address):
    with mpc.Listener(address, family="AF_UNIX") as listener:
        for _ in range(2):
            with listener.accept() as conn:
                msg = conn.recv()
                conn.send(msg.upper())


def mp_listener():
    d = tempfile.mkdtemp()
    address = os.path.join(d, "listener.sock")
    p = multiprocessing.Process(target=serve, args=(address,))
    p.start()
    for word in ["alpha", "beta"]:
        for _ in range(200):
            try:
                c = mpc.Client(address, family="AF_UNIX")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                import time
                time.sleep(0.01)
        c.send(word)
        print("listener replied:", c.recv())
        c.close()
    p.join()
    print("server exit:", p.exitcode)
    if os.path.exists(address):
        os.unlink(address)
    os.rmdir(d)


async def echo_main():
    a, b = socket.socketpair()
    r1, w1 = await asyncio.open_connection(sock=a)
    r2, w2 = await asyncio.open_connection(sock=b)
    for i in range(3):
        w1.write(b"line %d\n" % i)
        await w1.drain()
        line = await r2.readline()
        w2.write(line.upper())
        await w2.drain()
        print("asyncio:", (await r1.readline()).decode().strip())
    w1.close()
    await w1.wait_closed()
    print("asyncio eof:", await r2.read())
    w2.close()
    await w2.wait_closed()


def fd_passing():
    a, b = socket.socketpair()
    r, w = os.pipe()
    socket.send_fds(a, [b"fd"], [w])
    os.close(w)
    msg, fds, flags, addr = socket.recv_fds(b, 16, 4)
    os.write(fds[0], b"through passed fd")
    os.close(fds[0])
    print("recv_fds:", msg, len(fds), os.read(r, 64))
    os.close(r)
    a.close()
    b.close()


def dgram():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.send(b"one")
    a.send(b"two")
    print("dgram:", b.recv(10), b.recv(10))
    a.close()
    b.close()


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    pair()
    dgram()
    fd_passing()
    mp_pipe()
    mp_listener()
    asyncio.run(echo_main())
    print("done")
