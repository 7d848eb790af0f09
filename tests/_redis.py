"""A real redis-server for the tests: started on a free loopback port, stopped by its PID.

>>> from _redis import redis_url          # a module-scoped fixture: "redis://127.0.0.1:N/0"

Without redis-server the tests that use it are skipped (install it with
``apt-get install -y redis-server``), except under CI (the ``CI`` variable set), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

INSTALL_HINT = "apt-get install -y redis-server"


def redis_server_path() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process (no persistence, loopback only)."""

    def __init__(self, exe: str, logfile: str) -> None:
        self.exe = exe
        self.logfile = logfile
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self, timeout: float = 10.0) -> None:
        for _ in range(3):                     # a free port can be taken meanwhile: retry
            self.port = free_port()
            self.proc = subprocess.Popen(
                [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--logfile", self.logfile],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _ping(self.port):
                    return
                time.sleep(0.02)
            self.stop()
        with open(self.logfile) as f:
            log = f.read()[-2000:]
        raise RuntimeError("redis-server did not start:\n" + log)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()                   # SIGTERM to this PID only
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    exe = redis_server_path()
    if exe is None:
        message = "redis-server is not installed (%s)" % INSTALL_HINT
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the Redis tests", pytrace=False)
        pytest.skip(message)
    server = RedisServer(exe, str(tmp_path_factory.mktemp("redis") / "redis.log"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_url(redis_server) -> str:
    return redis_server.url
