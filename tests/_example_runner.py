"""Run an example of the streaming guide as a subprocess and talk to it over loopback.

``running("basic_sse", tmp_path)`` starts ``examples/guide_basic_sse.py`` with PORT=<free port>
and HOST=127.0.0.1 in ``tmp_path``, waits (polling, with a deadline) for catzilla's startup
line, yields an ``Example``; on leaving it sends SIGINT and checks that the process exits in time
with code 0 and no traceback on stderr. The helpers below read streamed bodies line by line or
event by event, each read with a time budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
READY_LINE = "Catzilla listening on"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 6.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Example:
    """One example process; stdout and stderr go to files in its working directory."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.script = EXAMPLES / ("guide_%s.py" % name)
        self.workdir = workdir
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.stdout_path = workdir / ("guide_%s.stdout" % name)
        self.stderr_path = workdir / ("guide_%s.stderr" % name)
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.stop_seconds: float | None = None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        env = dict(os.environ)
        env.update(PORT=str(self.port), HOST="127.0.0.1", PYTHONUNBUFFERED="1")
        # the repository's catzilla, unless the caller's PYTHONPATH says otherwise
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.script)], cwd=self.workdir, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )
        expected = "%s http://127.0.0.1:%d " % (READY_LINE, self.port)
        deadline = time.monotonic() + timeout
        while True:
            out_text = self.stdout()
            if READY_LINE in out_text:
                assert expected in out_text, (
                    "the example did not listen on HOST/PORT from the environment:\n" + out_text)
                return
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s before listening\n%s" % (
                    self.script.name, self.proc.returncode, self.output()))
            if time.monotonic() > deadline:
                raise AssertionError("%s did not print %r within %.0f s\n%s" % (
                    self.script.name, READY_LINE, timeout, self.output()))
            time.sleep(0.02)  # poll interval, not synchronisation

    def stdout(self) -> str:
        return self.stdout_path.read_text("utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text("utf-8", errors="replace")

    def output(self) -> str:
        return "--- stdout ---\n%s\n--- stderr ---\n%s" % (self.stdout(), self.stderr())

    def stop(self, timeout: float = STOP_TIMEOUT) -> float:
        """SIGINT; assert exit within ``timeout`` s, code 0, no traceback. Returns the seconds."""
        assert self.proc is not None
        if self.stop_seconds is not None:
            return self.stop_seconds
        assert self.proc.poll() is None, "%s died early (code %s)\n%s" % (
            self.script.name, self.proc.returncode, self.output())
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not exit within %.1f s of SIGINT\n%s" % (
                self.script.name, timeout, self.output())) from None
        self.stop_seconds = time.monotonic() - t0
        assert self.returncode == 0, "%s exited with %s after SIGINT\n%s" % (
            self.script.name, self.returncode, self.output())
        assert "Traceback" not in self.stderr(), "%s wrote a traceback\n%s" % (
            self.script.name, self.output())
        return self.stop_seconds

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def running(name: str, workdir: Path, *, stop_timeout: float = STOP_TIMEOUT) -> Iterator[Example]:
    with run_example(Example(name, workdir), stop_timeout) as example:
        yield example


@contextlib.contextmanager
def run_example(example: Example, stop_timeout: float = STOP_TIMEOUT) -> Iterator[Example]:
    """Start it; on leaving, SIGINT and check exit code 0 and no traceback."""
    try:
        example.start()
        try:
            yield example
        except BaseException:
            example.kill()
            print(example.output())  # shown by pytest with the failure
            raise
        example.stop(stop_timeout)
    finally:
        example.kill()


# -- clients ---------------------------------------------------------------------------------

def client_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))


async def within(awaitable: Any, timeout: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(awaitable, max(timeout, 0.0))
    except asyncio.TimeoutError:
        raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what)) from None


@dataclass
class Line:
    text: str
    at: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        return json.loads(self.text)


async def read_line(resp: aiohttp.ClientResponse, timeout: float, what: str = "a line") -> Line:
    """The next line of a streamed body (without its newline); AssertionError at EOF."""
    raw = await within(resp.content.readline(), timeout, what)
    if not raw:
        raise AssertionError("the body ended while waiting for %s" % what)
    assert raw.endswith(b"\n"), "the body ended inside a line: %r" % raw
    return Line(raw[:-1].decode("utf-8"), time.monotonic())


async def read_lines_to_eof(resp: aiohttp.ClientResponse, timeout: float) -> list[Line]:
    deadline = time.monotonic() + timeout
    lines = []
    while True:
        raw = await within(resp.content.readline(), deadline - time.monotonic(),
                           "the end of the body (%d lines so far)" % len(lines))
        if not raw:
            return lines
        assert raw.endswith(b"\n"), "the body ended inside a line: %r" % raw
        lines.append(Line(raw[:-1].decode("utf-8"), time.monotonic()))


@dataclass
class Event:
    """One server-sent event (fields as the SSE spec parses them)."""

    data: str
    event: str | None = None
    id: str | None = None
    at: float = 0.0
    lines: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


async def read_event(resp: aiohttp.ClientResponse, timeout: float, what: str = "an event") -> Event:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while True:
        line = (await read_line(resp, deadline - time.monotonic(), what)).text
        line = line.removesuffix("\r")
        if line == "":
            if lines:
                return _parse_event(lines)
            continue
        lines.append(line)


def _parse_event(lines: list[str]) -> Event:
    data: list[str] = []
    ev = Event(data="", at=time.monotonic(), lines=lines)
    for line in lines:
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            ev.event = value
        elif name == "id":
            ev.id = value
    ev.data = "\n".join(data)
    return ev


async def read_event_until(
    resp: aiohttp.ClientResponse, match: Callable[[Event], bool], timeout: float, what: str
) -> tuple[Event, list[Event]]:
    """Read events until one matches; returns it and the events before it."""
    deadline = time.monotonic() + timeout
    seen: list[Event] = []
    while True:
        ev = await read_event(resp, deadline - time.monotonic(),
                              "%s (seen before: %s)" % (what, [e.data[:80] for e in seen[-5:]]))
        if match(ev):
            return ev, seen
        seen.append(ev)


def json_type(ev: Event) -> Any:
    try:
        value = ev.json()
    except ValueError:
        return None
    return value.get("type") if isinstance(value, dict) else None


def chat_event(kind: str, **fields):
    """A matcher for a chat event of ``kind`` whose JSON has these field values."""
    def match(ev: Event) -> bool:
        if json_type(ev) != kind:
            return False
        value = ev.json()
        return all(value.get(k) == v for k, v in fields.items())
    return match


# -- raw HTTP --------------------------------------------------------------------------------

@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]  # names lower-cased, in order, repeats kept
    body: bytes  # as sent: still chunk-framed if the response is chunked

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]


async def raw_request(port: int, target: str, method: str = "GET", timeout: float = 10.0
                      ) -> RawResponse:
    """Send ``target`` exactly as given (no client-side normalisation) with Connection: close
    and read until the server closes."""
    reader, writer = await within(asyncio.open_connection("127.0.0.1", port), 5, "connect")
    try:
        writer.write(("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
                      % (method, target, port)).encode("latin-1"))
        data = await within(reader.read(), timeout, "the response to %s %s" % (method, target))
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, "no complete response head for %s: %r" % (target, data[:200])
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, status, _ = status_line.split(" ", 2)
    assert version == "HTTP/1.1", status_line
    headers = []
    for h in header_lines:
        name, _, value = h.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return RawResponse(int(status), headers, body)


def decode_chunked(body: bytes) -> list[bytes]:
    """The chunks of a chunk-framed body; AssertionError unless it is well framed and complete."""
    chunks = []
    pos = 0
    while True:
        eol = body.find(b"\r\n", pos)
        assert eol >= 0, "chunk size line missing at byte %d" % pos
        size_text = body[pos:eol].split(b";", 1)[0]
        size = int(size_text, 16)
        pos = eol + 2
        if size == 0:
            assert body[pos:] == b"\r\n", "bad end of a chunked body: %r" % body[pos:pos + 50]
            return chunks
        assert len(body) >= pos + size + 2, "truncated chunk at byte %d" % pos
        chunks.append(body[pos:pos + size])
        assert body[pos + size:pos + size + 2] == b"\r\n", "chunk not followed by CRLF"
        pos += size + 2
