"""TCP and UDP on the loopback as real Python programs use them: http.server in a thread
with urllib and http.client fetching from it, socketserver (threading, UDP), asyncio streams
and datagrams, selectors, multiprocessing's Listener/Client over TCP, getaddrinfo of
localhost. Nothing printed depends on port numbers or timing."""
import asyncio
import http.client
import http.server
import json
import multiprocessing
import multiprocessing.connection as mpc
import selectors
import socket
import socketserver
import threading
import urllib.request


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path, "agent": self.headers.get("X-Test")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers["Content-Length"])
        data = self.rfile.read(n)
        self.send_response(201)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[::-1])

    def log_message(self, *args):
        pass


def http_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever)
    t.start()
    port = srv.server_address[1]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/hello?x=1", headers={"X-Test": "urllib"})
    with urllib.request.urlopen(req) as r:
        print("urllib:", r.status, r.headers["Content-Type"], json.loads(r.read()))
    c = http.client.HTTPConnection("localhost", port)
    for i in range(3):  # keep-alive: one connection, three requests
        c.request("POST", "/echo", body=b"abc%d" % i)
        r = c.getresponse()
        print("http.client POST:", r.status, r.read())
    big = b"z" * 1_000_000
    c.request("POST", "/big", body=big)
    r = c.getresponse()
    print("1 MB round trip:", r.status, r.read() == big[::-1])
    c.close()
    srv.shutdown()
    srv.server_close()
    t.join()


class Upper(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line.upper())


class UdpEcho(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data[::-1], self.client_address)


def socketservers():
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Upper) as srv:
        t = threading.Thread(target=srv.serve_forever)
        t.start()
        with socket.create_connection(srv.server_address) as c:
            f = c.makefile("rwb")
            for w in (b"one\n", b"two\n"):
                f.write(w)
                f.flush()
                print("tcp server:", f.readline())
            f.close()
        srv.shutdown()
        t.join()
    with socketserver.UDPServer(("127.0.0.1", 0), UdpEcho) as srv:
        t = threading.Thread(target=srv.serve_forever)
        t.start()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(10)
        u.sendto(b"datagram", srv.server_address)
        data, frm = u.recvfrom(100)
        print("udp server:", data, frm == srv.server_address)
        u.close()
        srv.shutdown()
        t.join()


async def asyncio_streams():
    async def handle(reader, writer):
        while line := await reader.readline():
            writer.write(b"echo " + line)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    results = []

    async def client(i):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"hi %d\n" % i)
        await w.drain()
        results.append(await r.readline())
        w.close()
        await w.wait_closed()

    await asyncio.gather(*(client(i) for i in range(5)))
    print("asyncio streams:", sorted(results))
    server.close()
    await server.wait_closed()
    try:
        await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        print("asyncio refused after close: ConnectionRefusedError")

    loop = asyncio.get_running_loop()
    got = loop.create_future()

    class Proto(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.t = transport

        def datagram_received(self, data, addr):
            if data == b"ping":
                self.t.sendto(b"pong", addr)
            else:
                got.set_result(data)

    srv_t, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
    cli_t, _ = await loop.create_datagram_endpoint(Proto, remote_addr=srv_t.get_extra_info("sockname"))
    cli_t.sendto(b"ping")
    print("asyncio datagrams:", await asyncio.wait_for(got, 10))
    cli_t.close()
    srv_t.close()


def selector_loop():
    sel = selectors.DefaultSelector()
    lsock = socket.socket(socket.AF_INET6)
    lsock.bind(("::", 0))
    lsock.listen()
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ)
    port = lsock.getsockname()[1]
    clients = []
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        c = socket.socket(fam)
        c.setblocking(False)
        print("connect_ex:", c.connect_ex((host, port)) in (0, 115))
        clients.append(c)
    accepted = []
    while len(accepted) < 2:
        for key, _ in sel.select(timeout=10):
            conn, addr = lsock.accept()
            accepted.append(addr[0])
            conn.close()
    print("selector accepted:", sorted(accepted))
    for c in clients:
        c.close()
    sel.close()
    lsock.close()


def mp_child(addr):
    with mpc.Client(addr, authkey=b"key") as c:
        c.send(("child", [1, 2, 3]))
        print("child got:", c.recv(), flush=True)


def mp_listener():
    with mpc.Listener(("127.0.0.1", 0), authkey=b"key") as ln:
        p = multiprocessing.Process(target=mp_child, args=(ln.address,))
        p.start()
        with ln.accept() as c:
            print("listener got:", c.recv(), flush=True)
            c.send("welcome")
        p.join()
        print("child exit:", p.exitcode)


def lookups():
    infos = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    print("getaddrinfo localhost:", sorted({i[4][0] for i in infos}))
    print("gethostbyname:", socket.gethostbyname("localhost"))
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    print("options:", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
          s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
    s.close()


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    http_server()
    socketservers()
    asyncio.run(asyncio_streams())
    selector_loop()
    mp_listener()
    lookups()
    print("done")
