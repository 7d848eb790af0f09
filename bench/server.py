"""Run one server process: start it, wait until it answers HTTP, read its CPU and RSS, stop it.

CPU and RSS are summed over the server's whole process tree (granian and socketify may fork).
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path

from .peers import APPS, CACHE, REPO, Peer

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
FD_LIMIT = 65536


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FD_LIMIT if hard == resource.RLIM_INFINITY else min(FD_LIMIT, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st:
                children.setdefault(int(st[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids) -> dict[int, float]:
    """user+sys per process (all its threads), in seconds."""
    out = {}
    for p in pids:
        st = _stat(p)
        if st:
            out[p] = (int(st[11]) + int(st[12])) / CLK_TCK
    return out


def rss_bytes(pids) -> int:
    total = 0
    for p in pids:
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except OSError:
            pass
    return total


def _importable(module: str, python: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([python, "-c", code], cwd=APPS).returncode == 0


class ServerError(Exception):
    pass


class Server:
    def __init__(self, peer: Peer, env: dict[str, str] | None = None, timeout: float = 60.0):
        self.peer = peer
        self.port = free_port()
        self.log_path = CACHE / "logs" / f"{peer.name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        if peer.name == "catzilla" and not _importable("catzilla", peer.python):
            # not pip-installed (yet): run it straight from the working tree
            self.env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(REPO), self.env.get("PYTHONPATH")]))
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [self.peer.python, str(APPS / self.peer.app), "--port", str(self.port)],
            cwd=APPS, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=raise_fd_limit, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"exited with {self.proc.returncode}: {self.log_tail()}")
            if self.answers():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"no HTTP answer within {self.timeout:.0f}s: {self.log_tail()}")

    def answers(self) -> bool:
        """A real request: GET /plaintext must produce an HTTP status line."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                return s.recv(16).startswith(b"HTTP/1.")
        except OSError:
            return False

    def log_tail(self, n: int = 5) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in lines[-n:])

    def pids(self) -> list[int]:
        return tree(self.proc.pid) if self.proc else []

    def cpu(self) -> dict[int, float]:
        return cpu_seconds(self.pids())

    def rss(self) -> int:
        return rss_bytes(self.pids())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        if not self.proc:
            return
        pids = self.pids()
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGINT)
                self.proc.wait(grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        for p in pids:  # the root and any worker left behind
            if _stat(p) is not None:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two snapshots, over processes seen in either."""
    pids = set(before) | set(after)
    return sum(after.get(p, before.get(p, 0.0)) - before.get(p, 0.0) for p in pids)
