"""Writes to TCP sockets that the kernel takes in part or refuses (EAGAIN), at random.

tests/faults/writefaults.c is an LD_PRELOAD object that interposes write, writev, send,
sendto, sendmsg and sendfile(64) and, when CATZILLA_WRITE_FAULTS=<seed> is set, cuts writes to
TCP sockets short and refuses them with EAGAIN at random (only non-blocking ones). It is built
here with the C compiler, cached by the hash of its source.

- The shim's own tests check that it touches nothing but TCP sockets, never refuses a blocking
  one, is reproducible for a seed, and loses no byte.
- test_the_streaming_suite_under_write_faults runs a bounded subset of the suite (streams,
  downloads, SSE, the hub, pipelining, shutdown, and the byte-exact downloads below) in a
  child pytest under the shim, for a few seeds, and checks that faults were injected on each
  of catzilla's write paths: libuv's write and writev (the loop's uv_try_write and uv_write),
  the producer threads' sendmsg (stream.pyx, catzilla_send_framed) and os.sendfile (files).
- The byte-exact downloads run in the normal suite and in that subset: whatever the kernel
  takes, every byte arrives in order.

CATZILLA_WRITE_FAULT_SEEDS=4,5,6 runs the subset for other seeds; `python
tests/test_write_faults.py` builds the shim and prints its path, for runs by hand.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest
from conftest import UNDER_WRITE_FAULTS, RawClient, header

from catzilla import Broadcast, Catzilla, FileResponse, Response, StreamingResponse
from catzilla.testing import TestClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHIM_SOURCE = HERE / "faults" / "writefaults.c"
SEEDS = [int(s) for s in os.environ.get("CATZILLA_WRITE_FAULT_SEEDS", "1,2,3").split(",")]

outside_faults = pytest.mark.skipif(UNDER_WRITE_FAULTS, reason="runs the shim itself")

# -- the shim ------------------------------------------------------------------------------

KINDS = ("write", "writev", "send", "sendto", "sendmsg", "sendfile", "sendfile64")
ORIGINS = ("libuv", "catzilla", "other")
WHATS = ("calls", "short", "eagain")
MAGIC = b"CZWFLT01"


def build_shim() -> Path:
    """The shim, compiled into the temp dir once per version of its source."""
    source = SHIM_SOURCE.read_bytes()
    cache = Path(tempfile.gettempdir()) / "catzilla-writefaults"
    so = cache / ("writefaults-%s.so" % hashlib.sha256(source).hexdigest()[:16])
    if so.exists():
        return so
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    assert cc, "no C compiler (gcc or cc) to build the write-fault shim"
    cache.mkdir(exist_ok=True)
    tmp = cache / ("build-%d-%s" % (os.getpid(), so.name))
    done = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-o",
                           str(tmp), str(SHIM_SOURCE), "-ldl"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    os.replace(tmp, so)   # atomic: a concurrent build of the same source is the same file
    return so


@pytest.fixture(scope="module")
def shim() -> Path:
    return build_shim()


def read_counts(path: Path) -> dict[tuple[str, str, str], int]:
    """The shared counters: {(kind, origin, what): n}; all zero when no process wrote any."""
    n = len(KINDS) * len(ORIGINS) * len(WHATS)
    data = path.read_bytes() if path.exists() else b""
    if not data:
        values = (0,) * n
    else:
        assert data[:8] == MAGIC, data[:8]
        values = struct.unpack("=%dQ" % n, data[8:8 + 8 * n])
    keys = [(k, o, w) for k in KINDS for o in ORIGINS for w in WHATS]
    return dict(zip(keys, values, strict=True))


def total(counts, what, kinds=KINDS, origins=ORIGINS) -> int:
    return sum(counts[(k, o, what)] for k in kinds for o in origins)


def fault_env(shim: Path, seed: int, counts: Path, eagain=20, short=30) -> dict[str, str]:
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(filter(None, [str(shim), env.get("LD_PRELOAD")]))
    env["CATZILLA_WRITE_FAULTS"] = str(seed)
    env["CATZILLA_WRITE_FAULTS_EAGAIN"] = str(eagain)
    env["CATZILLA_WRITE_FAULTS_SHORT"] = str(short)
    env["CATZILLA_WRITE_FAULTS_COUNTS"] = str(counts)
    return env


def run_child(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@outside_faults
def test_the_shim_leaves_pipes_files_eventfds_and_other_sockets_alone(shim, tmp_path):
    """Every write is cut or refused if it may be (100 %, 100 %): none to a pipe, a file, an
    eventfd, a Unix socket or a UDP socket is, and none is even counted."""
    counts = tmp_path / "counts"
    out = run_child(f"""
        import os, socket
        data = b"p" * 1000
        r, w = os.pipe()
        os.set_blocking(w, False)
        assert all(os.write(w, data) == 1000 for _ in range(30))
        assert os.writev(w, [data, data]) == 2000
        with open({str(tmp_path / "f")!r}, "wb") as f:
            assert all(os.write(f.fileno(), data) == 1000 for _ in range(30))
        efd = os.eventfd(0, os.EFD_NONBLOCK)
        assert all(os.write(efd, (1).to_bytes(8, "little")) == 8 for _ in range(30))
        a, b = socket.socketpair()
        a.setblocking(False)
        assert all(a.send(data) == 1000 for _ in range(30))
        assert a.sendmsg([data, data]) == 2000
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setblocking(False)
        assert all(u.sendto(data, ("127.0.0.1", 9)) == 1000 for _ in range(30))
        print("ok")
    """, fault_env(shim, 1, counts, eagain=100, short=100))
    assert out.strip() == "ok"
    assert total(read_counts(counts), "calls") == 0


@outside_faults
def test_a_blocking_tcp_socket_gets_short_writes_and_never_eagain(shim, tmp_path):
    """EAGAIN at 100 %: a blocking socket still never sees it (it would break its caller);
    short writes are injected, and the same seed cuts the same writes the same way."""
    code = """
        import socket, threading
        ls = socket.create_server(("127.0.0.1", 0))
        c = socket.create_connection(ls.getsockname())
        s, _ = ls.accept()
        got = []
        t = threading.Thread(target=lambda: got.extend(iter(lambda: s.recv(65536), b"")))
        t.start()
        c.settimeout(None)   # truly blocking
        sent = [c.send(b"x" * 1000) for _ in range(300)]
        c.close(); t.join(); s.close(); ls.close()
        assert sum(map(len, got)) == sum(sent)
        print(",".join(map(str, sent)))
    """
    runs = {}
    for seed in (7, 7, 8):
        counts = tmp_path / ("counts-%d-%d" % (seed, len(runs)))
        out = run_child(code, fault_env(shim, seed, counts, eagain=100, short=30))
        sent = [int(n) for n in out.split(",")]
        assert all(1 <= n <= 1000 for n in sent)
        c = read_counts(counts)
        assert c[("send", "other", "eagain")] == 0
        assert c[("send", "other", "short")] == sum(n < 1000 for n in sent) > 0
        runs.setdefault(seed, []).append(sent)
    assert runs[7][0] == runs[7][1], "the same seed cut other writes"
    assert runs[7][0] != runs[8][0]


@outside_faults
def test_every_interposed_call_is_cut_and_refused_on_a_non_blocking_tcp_socket(shim, tmp_path):
    """write, writev, send, sendto, sendmsg and sendfile on a non-blocking TCP socket are cut
    short and refused at random, and what they report taken is exactly what arrives."""
    counts = tmp_path / "counts"
    src = tmp_path / "src.bin"
    src.write_bytes(random.Random(5).randbytes(1 << 20))
    out = run_child(f"""
        import hashlib, os, select, socket, threading
        ls = socket.create_server(("127.0.0.1", 0))
        c = socket.create_connection(ls.getsockname())
        s, _ = ls.accept()
        got = []
        t = threading.Thread(target=lambda: got.extend(iter(lambda: s.recv(65536), b"")))
        t.start()
        c.setblocking(False)
        fd = c.fileno()
        payload = os.urandom(3000)
        sent = bytearray()
        eagains = 0
        def attempt(call, data):
            global eagains
            try:
                n = call()
            except BlockingIOError:
                eagains += 1
                select.select([], [fd], [])
                return
            assert 0 < n <= len(data)
            sent.extend(data[:n])
        for i in range(300):
            attempt(lambda: os.write(fd, payload), payload)
            attempt(lambda: os.writev(fd, [payload[:1000], payload[1000:]]), payload)
            attempt(lambda: c.send(payload), payload)
            attempt(lambda: c.sendto(payload, ("127.0.0.1", 9)), payload)
            attempt(lambda: c.sendmsg([payload[:10], payload[10:]]), payload)
        with open({str(src)!r}, "rb") as f:
            data = f.read()
            off = 0
            while off < len(data):   # in pieces: many calls
                try:
                    n = os.sendfile(fd, f.fileno(), off, min(len(data) - off, 20000))
                except BlockingIOError:
                    eagains += 1
                    select.select([], [fd], [])
                    continue
                assert n > 0
                sent.extend(data[off:off + n])
                off += n
        c.close(); t.join(); s.close(); ls.close()
        assert b"".join(got) == bytes(sent), "what arrived is not what the calls reported sent"
        assert eagains > 0
        print("ok")
    """, fault_env(shim, 3, counts, eagain=20, short=30))
    assert out.strip() == "ok"
    c = read_counts(counts)
    for kind in ("write", "writev", "send", "sendto", "sendmsg"):
        assert c[(kind, "other", "short")] > 0 and c[(kind, "other", "eagain")] > 0, kind
    sendfile = ("sendfile", "sendfile64")
    assert total(c, "short", sendfile) > 0 and total(c, "eagain", sendfile) > 0


# -- byte-exact downloads (in the normal suite and in the fault run) ------------------------

def _chunks(seed: int, size: int) -> list[bytes]:
    """Distinct chunks of every size class the writers treat differently: copied into the
    scratch buffer (< 4 KiB), written from the object, written by the producer thread itself
    (>= 32 KiB)."""
    rng = random.Random(seed)
    out, left = [], size
    while left > 0:
        n = min(left, rng.choice([rng.randint(1, 200), rng.randint(200, 4095),
                                  rng.randint(4096, 32767), rng.randint(32768, 300_000)]))
        out.append(rng.randbytes(n))
        left -= n
    return out


SIZE = 6 << 20


def _download_app(chunks, body_path=None) -> Catzilla:
    app = Catzilla()
    length = str(sum(map(len, chunks)))

    async def agen():
        for c in chunks:
            yield c

    app.add_route("/sync", lambda r: StreamingResponse(iter(chunks)))
    app.add_route("/sync-length",
                  lambda r: StreamingResponse(iter(chunks), headers={"Content-Length": length}))
    app.add_route("/async", lambda r: StreamingResponse(agen()))
    app.add_route("/async-length",
                  lambda r: StreamingResponse(agen(), headers={"Content-Length": length}))
    app.add_route("/small", lambda r: Response(b"small"))
    if body_path is not None:
        app.add_route("/file", lambda r: FileResponse(body_path))
    return app


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("path", ["/sync", "/sync-length", "/async", "/async-length"])
def test_a_big_streamed_download_arrives_byte_exact(path):
    """Chunked and Content-Length bodies from sync and async producers, to a client with a
    small receive window: the body is the chunks, in order (h11 checks the framing)."""
    chunks = _chunks(len(path), SIZE)
    expected = b"".join(chunks)
    with TestClient(_download_app(chunks)) as client:
        for _ in range(2):   # twice on one connection: the first ends where the second starts
            with RawClient(client.port, rcvbuf=65536) as c:
                c.send(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
                resp, body = c.response()
                assert resp.status_code == 200
                if path.endswith("-length"):
                    assert header(resp, "content-length") == str(len(expected))
                else:
                    assert header(resp, "transfer-encoding") == "chunked"
                assert len(body) == len(expected) and _sha(body) == _sha(expected)


@pytest.mark.parametrize("path", ["/sync", "/async"])
def test_a_big_close_delimited_download_arrives_byte_exact(path):
    """HTTP/1.0: the body ends with the connection, so a cut would look whole; it must not
    be cut."""
    chunks = _chunks(7, SIZE)
    expected = b"".join(chunks)
    with TestClient(_download_app(chunks)) as client:
        with RawClient(client.port, rcvbuf=65536) as c:
            c.send(b"GET %s HTTP/1.0\r\n\r\n" % path.encode())
            head, _, body = c.read_until_closed().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"chunked" not in head.lower()
    assert len(body) == len(expected) and _sha(body) == _sha(expected)


def test_file_downloads_whole_and_in_ranges_arrive_byte_exact(tmp_path):
    """sendfile(2) from a worker thread, after a head the loop wrote."""
    data = random.Random(9).randbytes(16 << 20)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    with TestClient(_download_app([b"x"], path)) as client:
        with RawClient(client.port, rcvbuf=65536) as c:
            c.send(b"GET /file HTTP/1.1\r\nHost: t\r\n\r\n")
            resp, body = c.response()
            assert resp.status_code == 200 and _sha(body) == _sha(data)
            for start, end in [(12345, (9 << 20) + 17), (0, 0), (len(data) - 5, len(data) - 1)]:
                c.send(b"GET /file HTTP/1.1\r\nHost: t\r\nRange: bytes=%d-%d\r\n\r\n"
                       % (start, end))
                resp, body = c.response()
                assert resp.status_code == 206
                assert _sha(body) == _sha(data[start:end + 1]), (start, end)


def test_pipelined_streams_files_and_plain_responses_keep_their_order(tmp_path):
    """Requests sent in one write, answered by every kind of writer in turn: each response
    starts where the one before it ended."""
    chunks = _chunks(11, 2 << 20)
    expected = b"".join(chunks)
    data = random.Random(12).randbytes(3 << 20)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    order = ["/sync", "/small", "/file", "/async-length", "/small", "/sync-length", "/async",
             "/file"]
    with TestClient(_download_app(chunks, path)) as client:
        with RawClient(client.port, rcvbuf=65536) as c:
            c.send(b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % p.encode() for p in order))
            for p in order:
                resp, body = c.response()
                want = {"/small": b"small", "/file": data}.get(p, expected)
                assert resp.status_code == 200 and _sha(body) == _sha(want), p


def test_hub_subscribers_get_every_event_in_order():
    """Events of every size class, published from a thread, fanned out on the loop (the same
    bytes to every socket): each subscriber gets each one once, in order, with its id."""
    from test_broadcast import connect, hub_app

    hub = Broadcast()
    app = hub_app(hub)
    rng = random.Random(13)   # sizes the loop copies (< 4 KiB) and writes from the object
    sizes = [rng.choice([rng.randint(1, 200), rng.randint(200, 4095), rng.randint(4096, 60000)])
             for _ in range(150)]
    payloads = ["%d:%s" % (i, "e" * n) for i, n in enumerate(sizes)]
    assert len(payloads) < 256   # within a subscriber's queue: none is dropped
    with TestClient(app) as client:
        async def main():
            subs = await asyncio.gather(*(connect(client, "/sub/news") for _ in range(4)))
            assert hub.subscribers("news") == 4

            def publisher():
                for p in payloads:
                    hub.publish("news", p)

            async def read_all(s):
                return [await s.event(timeout=20) for _ in payloads]

            t = threading.Thread(target=publisher)
            t.start()
            try:
                got = await asyncio.gather(*(read_all(s) for s in subs))
            finally:
                t.join()
            for events in got:
                assert [e["id"] for e in events] == [str(i) for i in range(1, len(payloads) + 1)]
                assert [e["data"] for e in events] == payloads
            for s in subs:
                s.resp.close()

        client.run(main())


# -- the suite under faults ------------------------------------------------------------------

# What runs under the shim: streams, downloads, SSE, the hub, pipelining, shutdown, and this
# module's downloads (its shim tests and this runner skip themselves there).
SUBSET = [
    "tests/test_write_faults.py",
    "tests/test_streaming.py",
    "tests/test_files.py",
    "tests/test_direct_writes.py",
    "tests/test_sse.py",
    "tests/test_broadcast.py",
    "tests/test_transport.py",
    "tests/test_shutdown.py",
    "tests/test_http.py::test_keep_alive_serves_many_requests_on_one_connection",
    "tests/test_http.py::test_pipelined_requests_are_answered_in_order_even_across_async_handlers",
    "tests/test_http.py::test_many_pipelined_requests_in_one_write",
    "tests/test_http.py::test_http10_closes_after_response",
    "tests/test_http.py::test_large_response_body_arrives_whole",
    "tests/test_http.py::"
    "test_a_client_that_half_closes_after_its_request_gets_all_of_a_closing_response",
    "tests/test_http.py::test_bad_requests_get_4xx_or_501_and_the_connection_closes",
    "tests/test_http.py::test_random_garbage_never_crashes_the_server",
]
DESELECT = [
    # Slow, and about something else: 10,000 abandoned streams (resources), 1 GiB by
    # sendfile (this module's file downloads cover sendfile), send timeouts (a client that
    # does not read at all).
    "tests/test_streaming.py::test_thousands_of_abandoned_streams_leave_nothing_behind",
    "tests/test_files.py::test_one_gib_download_byte_exact_with_and_without_range",
    "tests/test_sse.py::test_send_timeout_disconnects_a_client_that_does_not_read",
    "tests/test_broadcast.py::test_send_timeout_disconnects_a_client_that_does_not_read",
    # Slow, and about timing or reading more than writing (each waits out a quiet spell,
    # a heartbeat or a publisher): the write paths they use are covered by the rest.
    "tests/test_broadcast.py::"
    "test_subscribers_joining_while_a_thread_publishes_get_no_gap_and_no_duplicate",
    "tests/test_broadcast.py::test_pings_arrive_when_idle_and_are_pushed_back_by_events",
    "tests/test_streaming.py::"
    "test_disconnect_runs_finally_before_next_heartbeat_and_leaves_registry",
    "tests/test_transport.py::"
    "test_requests_with_bodies_behind_a_stream_are_not_read_on",
    "tests/test_transport.py::"
    "test_a_client_leaving_with_requests_queued_behind_its_stream_is_noticed",
    # These assume that requests sent in one sendall reach the server in one read. A short
    # write of the client's splits them, and the server by design reads nothing more once a
    # request waits behind a stream, or while a response is backed up: the requests after
    # are never read while the test waits for them (it reads no response meanwhile).
    "tests/test_transport.py::"
    "test_requests_sent_while_a_stream_runs_are_answered_after_it",
    "tests/test_transport.py::"
    "test_a_stream_that_starts_behind_a_backed_up_response_notices_its_client_leaving",
]
# Each of catzilla's write paths, as the shim sees it: (calls, the object that makes them).
WRITE_PATHS = {
    "the loop's writes (libuv write)": (("write",), "libuv"),
    "the loop's vectored writes (libuv writev)": (("writev",), "libuv"),
    "producer threads' direct sends (sendmsg)": (("sendmsg",), "catzilla"),
    "file downloads (os.sendfile)": (("sendfile", "sendfile64"), "other"),
}


@outside_faults
@pytest.mark.timeout(200)
@pytest.mark.parametrize("seed", SEEDS)
def test_the_streaming_suite_under_write_faults(seed, shim, tmp_path):
    counts = tmp_path / "counts"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           "-rfE", *SUBSET, *("--deselect=" + d for d in DESELECT)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=fault_env(shim, seed, counts),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=170)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail("the run under write faults (seed %d) took over 170 s:\n%s"
                    % (seed, out[-6000:]))
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    assert proc.returncode == 0, "seed %d: %s\n%s" % (seed, summary, out[-12000:])
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 100 and "failed" not in summary, summary
    c = read_counts(counts)
    report = {name: (sum(c[(k, origin, "short")] for k in kinds),
                     sum(c[(k, origin, "eagain")] for k in kinds))
              for name, (kinds, origin) in WRITE_PATHS.items()}
    print("seed %d: %s; (short writes, EAGAINs) by path: %s" % (seed, summary, report))
    for name, (short, eagain) in report.items():
        assert short > 0 and eagain > 0, "seed %d: no faults on %s: %r" % (seed, name, report)


if __name__ == "__main__":
    print(build_shim())
