#!/usr/bin/env python3
"""The two ends of the secrets tests (not a suite).

server ADDR PORT CERT KEY [LOG]: an HTTPS server that answers every
request with what it received: the request target and each header, one
per line. With LOG, that goes to the file LOG on the host instead (one
line per request), and the answer is only "received": what reaches the
server never travels back into a guest.
client SOCK HOST CAFILE REQUEST: plays the guest's proxy on the gateway's
Unix socket ("CONNECT HOST 443"), then TLS verified against CAFILE, sends
REQUEST (\\r\\n escapes allowed, may be repeated with '|||' between) and
prints everything the server sends back.
"""
import http.server
import socket
import ssl
import sys


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def answer(self):
        if self.path.startswith("/sink") or self.path.startswith("/big/"):
            return self.bulk()
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        lines = ["target=" + self.path]
        lines += ["%s=%s" % (k.lower(), v) for k, v in self.headers.items()]
        lines.append("body=" + body.decode("latin-1"))
        out = ("\n".join(lines) + "\n").encode()
        if LOG:
            with open(LOG, "a") as f:
                f.write(" ".join(lines).replace("\n", " ") + "\n")
            out = b"received\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def bulk(self):
        """/sink: reads the body, answers its size; /big/N: answers N bytes."""
        n = int(self.headers.get("Content-Length") or 0)
        got = 0
        while got < n:
            got += len(self.rfile.read(min(n - got, 1 << 20)))
        size = int(self.path[5:]) if self.path.startswith("/big/") else 0
        out = b"%d" % got if not size else None
        self.send_response(200)
        self.send_header("Content-Length", str(size or len(out)))
        self.end_headers()
        if size:
            chunk = bytes(1 << 20)
            while size:
                k = min(size, len(chunk))
                self.wfile.write(chunk[:k])
                size -= k
        else:
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = answer

    def log_message(self, *args):
        pass


LOG = None


def server(addr, port, cert, key, log=None):
    global LOG
    LOG = log
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd = http.server.ThreadingHTTPServer((addr, int(port)), Echo)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.serve_forever()


def client(sock_path, host, cafile, request):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(sock_path)
    s.sendall(("CONNECT %s 443\n" % host).encode())
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            break
        line += c
    if not line.startswith(b"OK "):
        print(line.decode().strip())
        return 1
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    t = ctx.wrap_socket(s, server_hostname=host)
    sys.stderr.write("alpn=%s\n" % t.selected_alpn_protocol())
    t.sendall(request.encode("latin-1").decode("unicode_escape").encode("latin-1"))
    out = b""
    try:
        while True:
            d = t.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ssl.SSLError, ConnectionError) as e:
        out += ("\n[%s]" % e).encode()
    sys.stdout.write(out.decode("latin-1"))
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(*sys.argv[2:7])
    else:
        sys.exit(client(*sys.argv[2:6]))
