"""``app.listen(workers=N)`` as a real subprocess: N processes on one port (SO_REUSEPORT),
restarted when they die, a crash loop given up on, a clean stop on SIGTERM/SIGINT, and a Redis
hub shared by the workers."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _redis import redis_server, redis_url  # noqa: F401  (fixtures)
from conftest import wait_for as _wait_for

ROOT = Path(__file__).resolve().parents[1]


def pythonpath() -> str:
    """The repository's catzilla, unless the caller's PYTHONPATH says otherwise."""
    return os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)


APP = textwrap.dedent("""
    import os
    import sys

    from catzilla import Broadcast, Catzilla, EventSourceResponse

    app = Catzilla(shutdown_timeout=1.0)
    hub = Broadcast(os.environ["HUB_URL"]) if os.environ.get("HUB_URL") else None


    @app.get("/pid")
    def pid(request):
        return {"pid": os.getpid()}


    @app.get("/events")
    def events(request):
        return EventSourceResponse(hub.subscribe("w", request.last_event_id), ping=None,
                                   headers={"X-Worker": str(os.getpid())})


    @app.post("/stop")
    def stop(request):
        app.stop()   # with workers: the whole service stops
        return {"pid": os.getpid()}


    @app.post("/publish")
    def publish(request):
        hub.publish("w", request.text())
        return {"pid": os.getpid()}


    if os.environ.get("CRASH"):
        def cannot_start(loop):
            raise RuntimeError("this worker cannot start")
        app._make_server = cannot_start

    if __name__ == "__main__":
        app.listen(port=0, host="127.0.0.1", workers=int(sys.argv[1]))
""")


class Supervised:
    """The app script running under ``python app.py N``; stdout read with deadlines."""

    def __init__(self, tmp_path: Path, workers: int, **env: str) -> None:
        script = tmp_path / "app.py"
        script.write_text(APP)
        self.stderr_path = tmp_path / "stderr.txt"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), str(workers)], stdout=subprocess.PIPE,
                stderr=err, stdin=subprocess.DEVNULL,
                env=dict(os.environ, PYTHONPATH=pythonpath(), **env))
        self.out = b""
        self.port = 0

    def read_line(self, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line on stdout; stderr:\n" + self.stderr())
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise EOFError("stdout closed; stderr:\n" + self.stderr())
                self.out += chunk
        line, _, self.out = self.out.partition(b"\n")
        return line.decode()

    def wait_listening(self, workers: int) -> None:
        line = self.read_line()
        m = re.fullmatch(r"Catzilla listening on http://127\.0\.0\.1:(\d+) with (\d+) workers "
                         r"\(Ctrl\+C to stop\)", line)
        assert m, line
        assert int(m.group(2)) == workers
        self.port = int(m.group(1))

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def children(self) -> set[int]:
        return children_of(self.proc.pid)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:        # a failed test: do not leave it behind
            for pid in self.children():
                _kill(pid)
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def children_of(ppid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == ppid and fields[0] != "Z":     # zombies are dead already
            found.add(int(entry))
    return found


def gone(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_for(predicate, timeout=10.0, interval=0.02):
    return _wait_for(predicate, timeout, interval)


def request(port: int, method: str = "GET", path: str = "/pid", body: str | None = None):
    """One request on a new connection (so the kernel picks a worker for each)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close"})
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())
    finally:
        conn.close()


def pids_serving(port: int, want: set[int] | int, attempts: int = 300) -> set[int]:
    """PIDs seen answering, until ``want`` (a set of PIDs, or a count of distinct ones)."""
    seen: set[int] = set()
    for _ in range(attempts):
        seen.add(request(port)["pid"])
        if (len(seen) >= want) if isinstance(want, int) else want <= seen:
            break
    return seen


def test_workers_share_the_port_and_stop_cleanly_on_sigterm(tmp_path):
    sup = Supervised(tmp_path, 2)
    try:
        sup.wait_listening(2)
        workers = sup.children()
        assert len(workers) == 2
        assert pids_serving(sup.port, workers) == workers      # both serve
        code = sup.stop(signal.SIGTERM)
    finally:
        sup.close()
    assert code == 0, sup.stderr()
    assert all(gone(pid) for pid in workers)
    assert "Traceback" not in sup.stderr()
    with pytest.raises(OSError):
        request(sup.port)


def test_a_killed_worker_is_restarted_and_sigint_stops_all(tmp_path):
    sup = Supervised(tmp_path, 2)
    try:
        sup.wait_listening(2)
        first = sup.children()
        assert pids_serving(sup.port, first) == first
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: len(sup.children() - first) == 1)
        now = sup.children()
        assert len(now) == 2 and victim not in now
        (new,) = now - first
        assert new in pids_serving(sup.port, {new})             # the new one serves
        assert "was killed by SIGKILL; restarting it" in sup.stderr()
        code = sup.stop(signal.SIGINT)
    finally:
        sup.close()
    assert code == 0, sup.stderr()
    assert all(gone(pid) for pid in first | now)


def test_a_crash_loop_is_given_up_with_a_clear_error(tmp_path):
    sup = Supervised(tmp_path, 2, CRASH="1")
    try:
        code = sup.proc.wait(20)
        banner = sup.proc.stdout.read()
    finally:
        sup.close()
    err = sup.stderr()
    assert code != 0
    assert "keeps crashing" in err and "giving up" in err, err
    assert "this worker cannot start" in err
    assert b"listening" not in banner
    assert not children_of(sup.proc.pid)


def test_two_workers_on_a_redis_hub(tmp_path, redis_url):  # noqa: F811
    """A subscriber connected to one worker receives what is published through the other."""
    sup = Supervised(tmp_path, 2, HUB_URL=redis_url)
    subscriptions = []
    try:
        sup.wait_listening(2)
        workers = sup.children()
        # subscribe until one subscriber sits on each worker
        by_worker: dict[int, tuple] = {}
        for _ in range(200):
            conn = http.client.HTTPConnection("127.0.0.1", sup.port, timeout=5)
            conn.request("GET", "/events")
            resp = conn.getresponse()
            assert resp.status == 200
            subscriptions.append(conn)
            pid = int(resp.headers["X-Worker"])
            by_worker.setdefault(pid, (conn, resp))
            if set(by_worker) == workers:
                break
        assert set(by_worker) == workers
        # publish through each worker; every subscriber gets both, in order
        sent: dict[int, str] = {}
        for _ in range(300):
            msg = "message %d" % len(sent)
            pid = request(sup.port, "POST", "/publish", msg)["pid"]
            if pid in sent:
                continue                    # keep one message per publishing worker
            sent[pid] = msg
            if set(sent) == workers:
                break
        assert set(sent) == workers
        for pid, (_, resp) in by_worker.items():
            got = []
            while len(got) < len(sent):
                line = resp.readline().decode()
                if line.startswith("data: "):
                    got.append(line[6:].rstrip("\n"))
            assert got == ["message 0", "message 1"], (pid, got)
            other = next(p for p in workers if p != pid)
            assert sent[other] in got               # published through the other worker
        code = sup.stop(signal.SIGTERM)
    finally:
        for conn in subscriptions:
            conn.close()
        sup.close()
    assert code == 0, sup.stderr()
    assert all(gone(pid) for pid in workers)


def test_workers_stop_by_themselves_when_the_supervisor_is_killed(tmp_path):
    # (else they go on serving the port, SO_REUSEPORT, beside a new deployment's workers)
    sup = Supervised(tmp_path, 2)
    try:
        sup.wait_listening(2)
        workers = sup.children()
        assert len(workers) == 2 and pids_serving(sup.port, workers) == workers
        sup.proc.kill()
        sup.proc.wait(5)
        assert wait_for(lambda: all(gone(pid) for pid in workers), timeout=10), sup.stderr()
        assert "the supervisor (pid %d) has gone" % sup.proc.pid in sup.stderr()
        with pytest.raises(OSError):
            request(sup.port)
    finally:
        for pid in workers:
            _kill(pid)
        sup.close()


def test_app_stop_in_a_worker_stops_the_whole_service(tmp_path):
    sup = Supervised(tmp_path, 2)
    try:
        sup.wait_listening(2)
        workers = sup.children()
        request(sup.port, "POST", "/stop")
        code = sup.proc.wait(15)
    finally:
        sup.close()
    assert code == 0, sup.stderr()
    assert all(gone(pid) for pid in workers)
    assert "restarting" not in sup.stderr()


@pytest.mark.parametrize("delay", [0.09, 0.095, 0.1, 0.105, 0.11])
def test_a_stop_signal_while_a_worker_restarts_is_not_lost(tmp_path, delay):
    # SIGTERM about when the supervisor forks the replacement of a killed worker (it waits
    # 0.1 s first): the new worker must still stop gracefully, not be killed at the deadline
    sup = Supervised(tmp_path, 1)
    try:
        sup.wait_listening(1)
        (worker,) = sup.children()
        _kill(worker)
        time.sleep(delay)
        code = sup.stop(signal.SIGTERM)
    finally:
        sup.close()
    assert code == 0, sup.stderr()
    assert "did not stop in time" not in sup.stderr()
