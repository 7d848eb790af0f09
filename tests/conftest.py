from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager

import h11
import pytest

from catzilla import _core

# Set when the suite runs under tests/faults/writefaults.c (tests/test_write_faults.py): the
# kernel seems to take any write in part or refuse it, so which writer sends a chunk (the loop
# or a producer thread) is not fixed; what arrives is.
UNDER_WRITE_FAULTS = bool(os.environ.get("CATZILLA_WRITE_FAULTS"))


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(scope="session", autouse=True)
def _warm_up():
    """Open and close one server and client first: the first event loop of a process
    creates process-wide resources (a wake-up pipe) that are not leaks."""
    from catzilla import Catzilla
    from catzilla.testing import TestClient

    with TestClient(Catzilla()) as client:
        client.get("/")
    yield


@pytest.fixture(autouse=True)
def no_leaks(_warm_up):
    """Every test must leave no libuv handle, thread or file descriptor behind."""
    threads_before = set(threading.enumerate())
    fds_before = _open_fds()
    yield
    assert _core.live_handles() == 0, "catzilla left %d libuv handles open" % _core.live_handles()
    leaked_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not leaked_threads, "threads left running: %r" % leaked_threads
    leaked_fds = _open_fds() - fds_before
    # an fd number listed now but not before is a leak only if it is still open
    leaked = [fd for fd in leaked_fds if os.path.exists("/proc/self/fd/" + fd)]
    assert not leaked, "file descriptors left open: %r" % [
        os.readlink("/proc/self/fd/" + fd) for fd in leaked if os.path.exists("/proc/self/fd/" + fd)
    ]


@contextmanager
def fast_and_llhttp(make_app):
    """One app on two servers: one reads plain request heads with its fast path, the other
    with llhttp only; yields their TestClients (fast, llhttp)."""
    from catzilla.testing import TestClient

    with TestClient(make_app()) as fast, TestClient(make_app()) as slow:
        slow.server.fast_heads = False
        assert fast.server.fast_heads
        yield fast, slow


def wait_for(predicate, timeout=5.0, interval=0.005):
    """Poll a condition with a deadline (synchronisation on state, not on time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def exchange(port: int, data: bytes) -> bytes:
    """Send data, half-close, and return everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                return out
            out += chunk
    return out


class RawClient:
    """A raw socket to the server; responses are parsed by h11, an HTTP implementation we did
    not write. ``send`` writes bytes as they are; ``response`` parses the next response."""

    def __init__(self, port: int, timeout: float = 10.0, rcvbuf: int = 0) -> None:
        if rcvbuf:
            # set before connecting: the window is agreed on at the handshake
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect(("127.0.0.1", port))
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.conn = h11.Connection(h11.CLIENT)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self, method: str = "GET") -> tuple[h11.Response, bytes]:
        """Parse the next response to a request made with ``method``."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        self.conn.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
        self.conn.send(h11.EndOfMessage())
        head = None
        body = b""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(65536))
                continue
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return head, body
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed before a complete response")

    def read_until_closed(self) -> bytes:
        """Everything the server still sends until it closes the connection."""
        data = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return data
            data += chunk

    def is_closed_by_server(self) -> bool:
        return self.read_until_closed() == b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def header(response: h11.Response, name: str) -> str | None:
    name_b = name.lower().encode()
    for k, v in response.headers:
        if k == name_b:
            return v.decode("latin-1")
    return None
