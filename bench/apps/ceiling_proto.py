"""The ceiling: answer every request with fixed bytes, without parsing.

Pure-Python-mode Cython: bench/build.py compiles this file with cythonize into bench/.cache/;
uncompiled it still runs as a plain asyncio.Protocol (the report says which one ran).
It counts request terminators (CRLF CRLF) in what it receives and writes one canned response per
request. A request carrying "Connection: close" gets the closing variant, then the socket closes:
with FIN, or, once reset_on_close(True) was called, with a reset (SO_LINGER 0; for
bench/close_mode.py, which shows what resets save the client).
"""

import socket
import struct

import cython

LINGER_ZERO = struct.pack("ii", 1, 0)
RESET = [False]


def reset_on_close(on: bool) -> None:
    RESET[0] = on

KEEP = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
        b"Server: ceiling\r\n\r\nHello, World!")
CLOSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
         b"Connection: close\r\nServer: ceiling\r\n\r\nHello, World!")


@cython.cclass
class Ceiling:
    transport: object
    tail: bytes

    def __init__(self):
        self.tail = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        buf: bytes = self.tail + data if self.tail else data
        n: cython.Py_ssize_t = buf.count(b"\r\n\r\n")
        self.tail = buf[-3:]
        if n == 0:
            return
        if b"onnection: close" in buf:
            self.transport.write(CLOSE)
            if RESET[0]:
                self.transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
            self.transport.close()
        else:
            self.transport.write(KEEP * n)

    def connection_lost(self, exc):
        self.transport = None

    def eof_received(self):
        return False

    def pause_writing(self):
        pass

    def resume_writing(self):
        pass
