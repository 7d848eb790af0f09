"""Helpers shared by test files that talk to a server over real loopback sockets.

- ``Served`` / ``served``: a script that ends in ``app.listen(port=0, host="127.0.0.1")``, run as
  its own process; ``assert_clean_exit`` checks its stderr.
- ``request`` opens a raw socket and sends a GET; ``read_until``, ``read_to_eof``,
  ``read_to_close`` and ``read_response`` read from it, each with a time budget.
- ``split_response``, ``dechunk`` and ``sse_events`` take a raw response apart.
- ``read_all`` sends bytes and reads until the server closes; ``parse`` reads those responses
  with h11; ``head_lines`` picks a header's lines from a raw head.
- ``get`` sends one request on a ``RawClient``; ``errors`` are catzilla's logged errors.
- ``framing_app`` and ``sse_hub_app``: apps that tests of more than one file serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h11
from conftest import RawClient

from catzilla import (
    Broadcast,
    Catzilla,
    EventSourceResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)

# -- a script run as a server process ---------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


class Served:
    """A script that ends in ``app.listen(port=0, host="127.0.0.1")``, run as a process."""

    def __init__(self, script: str, *args: str) -> None:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        # the repository's catzilla, unless the caller's PYTHONPATH says otherwise
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script), *args], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("Catzilla listening on http://127.0.0.1:"):
            err = self.kill()
            raise AssertionError("the server did not start: %r\n%s" % (line, err))
        self.port = int(line.split(":")[2].split()[0])
        self.lines: list[str] = []

    def wait_line(self, text: str) -> None:
        """Read the server's output lines until one contains ``text`` (it must come)."""
        while True:
            line = self.proc.stdout.readline()
            assert line, "the server's output ended before %r: %r" % (text, self.lines)
            self.lines.append(line)
            if text in line:
                return

    def signal(self, sig: int = signal.SIGTERM) -> float:
        self.proc.send_signal(sig)
        return time.monotonic()

    def finish(self, timeout: float = 20.0) -> tuple[str, str]:
        """Wait for the exit (code 0); returns its stdout (all of it) and stderr."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the server did not exit within %.0f s" % timeout) from None
        out = "".join(self.lines) + out
        assert self.proc.returncode == 0, (self.proc.returncode, out, err)
        return out, err

    def kill(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.communicate()[1] or ""


@contextlib.contextmanager
def served(script: str, *args: str):
    server = Served(script, *args)
    try:
        yield server
    finally:
        server.kill()


def assert_clean_exit(err: str) -> None:
    assert "Traceback" not in err, err
    assert "already running" not in err, err            # aclose() of a running generator
    assert "Task was destroyed" not in err, err


# -- a raw socket -----------------------------------------------------------------------------

def request(port: int, path: str, headers: bytes = b"", rcvbuf: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)   # before connecting
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (path.encode(), headers))
    return s


def read_until(s: socket.socket, needle: bytes, data: bytes = b"", timeout: float = 5.0) -> bytes:
    """Read until ``needle`` is in what was received; AssertionError at EOF or time-out."""
    deadline = time.monotonic() + timeout
    while needle not in data:
        s.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise AssertionError("no %r within %.1f s; got %r"
                                 % (needle, timeout, data[-300:])) from None
        if not chunk:
            raise AssertionError("the connection closed before %r; got %r" % (needle, data[-300:]))
        data += chunk
    return data


def read_to_eof(s: socket.socket, data: bytes = b"", timeout: float = 10.0) -> bytes:
    """Everything until the server closes (with a FIN or a reset)."""
    return read_to_close(s, data, timeout)[0]


def read_to_close(s: socket.socket, data: bytes = b"", timeout: float = 10.0
                  ) -> tuple[bytes, bool]:
    """Everything until the server closes, and whether it closed with a reset (not a FIN)."""
    deadline = time.monotonic() + timeout
    while True:
        s.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise AssertionError("the connection was not closed within %.1f s" % timeout) from None
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, False
        data += chunk


def read_response(s: socket.socket) -> bytes:
    """The body of one Content-Length response on a keep-alive connection."""
    data = read_until(s, b"\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "the connection closed inside a response"
        body += chunk
    assert len(body) == length
    return body


def split_response(raw: bytes) -> tuple[bytes, bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, raw[:300]
    return head, body


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """The payload of the complete chunks of a chunked body, and whether it was terminated."""
    out = b""
    pos = 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return out, False
        size = int(body[pos:eol], 16)
        if size == 0:
            return out, body[eol + 2:eol + 4] == b"\r\n"
        if len(body) < eol + 2 + size + 2:
            return out, False
        out += body[eol + 2:eol + 2 + size]
        assert body[eol + 2 + size:eol + 4 + size] == b"\r\n"
        pos = eol + 4 + size


def sse_events(payload: bytes) -> list[dict]:
    events = []
    for block in payload.decode("utf-8").split("\n\n"):
        fields: dict = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = fields[name] + "\n" + value if name in fields else value
        if fields:
            events.append(fields)
    return events


# -- whole exchanges, parsed by h11 -----------------------------------------------------------

def read_all(port: int, data: bytes) -> bytes:
    """Send data (no half-close: the server must close by itself) and read until it does."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def parse(raw: bytes, methods: list[str]) -> tuple[list[tuple[int, bytes]], bytes]:
    """The responses in raw to requests made with methods, parsed by h11, and the bytes
    after the last of them."""
    conn = h11.Connection(h11.CLIENT)
    conn.receive_data(raw)
    out = []
    for method in methods:
        if conn.our_state is h11.DONE:
            conn.start_next_cycle()
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
        conn.send(h11.EndOfMessage())
        status, body = None, b""
        while True:
            event = conn.next_event()
            assert event is not h11.NEED_DATA, "incomplete response in %r" % raw
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        out.append((status, body))
    return out, conn.trailing_data[0]


def head_lines(raw: bytes, name: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [line for line in head.split(b"\r\n") if line.lower().startswith(name + b":")]


# -- a request on a RawClient, and what catzilla logged ---------------------------------------

def get(c: RawClient, path: str, extra: bytes = b"", method: str = "GET"):
    c.send(method.encode() + b" " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n")
    return c.response(method)


def errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "catzilla" and r.levelno >= logging.ERROR]


# -- apps -------------------------------------------------------------------------------------

def framing_app() -> Catzilla:
    """Responses that set their own Content-Length (/cl/..., /stream/cl/...), a busy
    /slow, and a JSON echo of method, path and body for any other path."""
    app = Catzilla()

    def cl(*values: str):
        return [("Content-Length", v) for v in values]

    # a handler that sets its own Content-Length (e.g. forwarding an upstream's headers)
    framed = {
        "/cl/one": cl("4"),
        "/cl/same": cl("4", "4"),
        "/cl/differ": cl("4", "40"),
        "/cl/plus": cl("+4"),
        "/cl/underscore": cl("0_4"),
        "/cl/space": cl(" 4"),
        "/cl/list": cl("4, 4"),
        "/cl/empty": cl(""),
    }
    for path, headers in framed.items():
        app.route(path, methods=["GET", "HEAD"])(
            lambda request, h=headers: Response(b"0123", headers=h))
        app.route("/stream" + path, methods=["GET", "HEAD"])(
            lambda request, h=headers: StreamingResponse(iter([b"01", b"23"]), headers=h))

    @app.route("/slow", methods=["GET", "HEAD"])
    async def slow(request):
        await asyncio.sleep(0)   # busy while the rest of the read is parsed
        return Response(b"slow")

    @app.route("/{rest:path}", methods=["GET", "HEAD", "POST"])
    def echo(request):
        return JSONResponse({"method": request.method, "path": request.raw_path.decode(),
                             "body": request.body.decode("latin-1")})

    return app


def sse_hub_app(hub: Broadcast, ping: float | None = None) -> Catzilla:
    """/sub/{channel}: the hub's events from the Last-Event-ID on; /ok."""
    app = Catzilla()

    @app.get("/sub/{channel}")
    def sub(request):
        return EventSourceResponse(
            hub.subscribe(request.path_params["channel"], request.last_event_id), ping=ping)

    @app.get("/ok")
    def ok(request):
        return "ok"

    return app
