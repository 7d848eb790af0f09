"""A plain read-and-send download server: no framework, one thread per connection.

The bound for any server whose body comes from a Python generator of file.read chunks: every
64 KiB chunk is copied out of the page cache by file.read and into the socket by send, the two
copies plain sendfile does not make. `--framing chunked` adds HTTP/1.1 chunked framing (the frame
head, the chunk and its CRLF in one sendmsg), as a framework must when the length is unknown;
`--framing length` sends Content-Length and the bare chunks.
"""

import argparse
import os
import socket
import threading

import common


def serve(conn: socket.socket, chunked: bool) -> None:
    try:
        _serve(conn, chunked)
    except OSError:
        pass


def _serve(conn: socket.socket, chunked: bool) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn:
        for _ in common.request_heads(conn):
            with open(common.DATA_FILE, "rb") as f:
                if chunked:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                    while chunk := f.read(common.CHUNK):
                        frame = [b"%x\r\n" % len(chunk), chunk, b"\r\n"]
                        sent = conn.sendmsg(frame)
                        if sent < len(chunk) + len(frame[0]) + 2:
                            conn.sendall(b"".join(frame)[sent:])
                    conn.sendall(b"0\r\n\r\n")
                else:
                    size = os.fstat(f.fileno()).st_size
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                 b"Content-Length: %d\r\n\r\n" % size)
                    while chunk := f.read(common.CHUNK):
                        conn.sendall(chunk)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--framing", choices=("chunked", "length"), required=True)
    args = ap.parse_args()
    srv = socket.create_server(("127.0.0.1", args.port), backlog=1024)
    try:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn, args.framing == "chunked"),
                             daemon=True).start()
    except KeyboardInterrupt:
        pass
