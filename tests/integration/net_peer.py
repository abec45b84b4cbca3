#!/usr/bin/python3
# The other end of the port forwarding tests (tests/integration/net.sh,
# bench/net.sh): TCP services that stand in for a program in the sandbox,
# and a client that half-closes. Each server prints its port and serves
# until killed.
#
#   net_peer.py serve MODE [BIND [ARG]]   MODE: echo | hash | first | halfclose | rr
#   net_peer.py send HOST PORT            stdin -> socket (then half-close), socket -> stdout
#   net_peer.py many HOST PORT N BYTES    N concurrent echo round trips; prints how many matched
import asyncio
import hashlib
import os
import socket
import sys
import threading

CHUNK = 1 << 18


async def read_all(r, h=None):
    n = 0
    while True:
        d = await r.read(CHUNK)
        if not d:
            return n
        n += len(d)
        if h:
            h.update(d)


def handler(mode, arg):
    async def handle(r, w):
        try:
            if mode == 'echo':
                # Echo until the client half-closes, then half-close too.
                while True:
                    d = await r.read(CHUNK)
                    if not d:
                        break
                    w.write(d)
                    await w.drain()
                w.write_eof()
            elif mode == 'hash':
                # Read everything, then answer with its SHA-256.
                h = hashlib.sha256()
                await read_all(r, h)
                w.write((h.hexdigest() + '\n').encode())
            elif mode == 'first':
                # Talk and close at once, before the client says anything.
                w.write(b'bye\n')
            elif mode == 'halfclose':
                # Talk, half-close, then keep reading what the client sends.
                w.write(b'hello\n')
                await w.drain()
                w.write_eof()
                h = hashlib.sha256()
                await read_all(r, h)
                with open(arg, 'w') as f:
                    f.write(h.hexdigest() + '\n')
            elif mode == 'rr':
                # Request/response: answer each 64-byte request with 64 bytes.
                while True:
                    d = await r.readexactly(64)
                    w.write(d)
                    await w.drain()
            await w.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            w.close()
    return handle


async def serve(mode, bind, arg):
    s = await asyncio.start_server(handler(mode, arg), bind, 0, limit=CHUNK, backlog=1024)
    print(s.sockets[0].getsockname()[1], flush=True)
    await s.serve_forever()


def send(host, port):
    s = socket.create_connection((host, int(port)))

    def writer():
        try:
            while True:
                d = os.read(0, CHUNK)
                if not d:
                    break
                s.sendall(d)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    while True:
        d = s.recv(CHUNK)
        if not d:
            break
        os.write(1, d)
    t.join()


async def one_round_trip(host, port, size):
    r, w = await asyncio.open_connection(host, port, limit=CHUNK)
    data = os.urandom(size)

    async def writer():
        w.write(data)
        await w.drain()
        w.write_eof()
    wt = asyncio.ensure_future(writer())
    got = bytearray()
    while True:
        d = await r.read(CHUNK)
        if not d:
            break
        got += d
    await wt
    w.close()
    return bytes(got) == data


async def many(host, port, n, size):
    results = await asyncio.gather(*[one_round_trip(host, int(port), int(size))
                                     for _ in range(int(n))], return_exceptions=True)
    print(sum(1 for x in results if x is True))


def main():
    cmd = sys.argv[1]
    if cmd == 'serve':
        mode = sys.argv[2]
        bind = sys.argv[3] if len(sys.argv) > 3 else '127.0.0.1'
        arg = sys.argv[4] if len(sys.argv) > 4 else None
        asyncio.run(serve(mode, bind, arg))
    elif cmd == 'send':
        send(sys.argv[2], sys.argv[3])
    elif cmd == 'many':
        asyncio.run(many(*sys.argv[2:6]))


if __name__ == '__main__':
    main()
