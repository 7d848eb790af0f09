"""The loopback ceiling for downloads: no framework, socket.sendfile on a raw HTTP response."""

import os
import socket
import threading

import common


def serve(conn: socket.socket) -> None:
    try:
        _serve(conn)
    except OSError:
        pass


def _serve(conn: socket.socket) -> None:
    with conn, open(common.DATA_FILE, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        for _ in common.request_heads(conn):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % size)
            conn.sendfile(f, 0, size)


if __name__ == "__main__":
    srv = socket.create_server(("127.0.0.1", common.port()), backlog=1024)
    try:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
    except KeyboardInterrupt:
        pass
