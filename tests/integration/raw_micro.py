"""A micro written on raw sockets that answers each path with exact bytes, however wrong.

Real servers produce these shapes (Express's 304 with no length, HTTP/1.0 bodies that end at
close, a crash mid-body); the proxy must survive every one of them and stay up for the next.
"""

from __future__ import annotations

# path -> (bytes to send, what to do after: "keep" the connection, "close" it, or "hang" on it)
RAW_MICRO = r"""
import os, socket, threading, time

CASES = {
    "/ok": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "keep"),
    "/304": (b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n', "keep"),
    "/304-length": (b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n',
                    "keep"),
    "/304-close": (b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n', "close"),
    "/204": (b"HTTP/1.1 204 No Content\r\n\r\n", "keep"),
    "/204-length": (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", "keep"),
    "/100": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter",
             "keep"),
    "/103": (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
             b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhints", "keep"),
    "/head": (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n",
              "keep"),
    "/head-chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "keep"),
    "/until-close": (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody ends at close", "close"),
    "/http10": (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold style", "close"),
    "/short": (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..", "close"),
    "/long": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"
              b"Content-Length: 8\r\n\r\nsmuggled", "keep"),
    "/chunked-dies": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                      "close"),
    "/chunked-ok": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "keep"),
    "/both-lengths": (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"
                      b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "keep"),
    "/garbage": (b"NOT HTTP AT ALL\r\n\r\n", "close"),
    "/no-answer": (b"", "close"),
    "/head-only-then-hang": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "hang"),
}

def read_head(conn, buf):
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None, b""
        buf += data
    return buf.split(b"\r\n\r\n", 1)

def serve(conn):
    buf = b""
    with conn:
        while True:
            head, buf = read_head(conn, buf)
            if head is None:
                return
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            while len(buf) < length:
                buf += conn.recv(65536)
            buf = buf[length:]
            answer, after = CASES.get(path, CASES["/ok"])
            conn.sendall(answer)
            if after == "close":
                return
            if after == "hang":
                time.sleep(3)
                return

server = socket.create_server(("127.0.0.1", int(os.environ["PORT"])), backlog=128)
print("raw micro listening", flush=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""
