"""User-space instructions per request, counted by callgrind: repeatable whatever else the
machine is doing (wrk's CPU per request is not, on a loaded machine).

    python bench/callgrind_requests.py                      # this tree: params, echo, plaintext
    python bench/callgrind_requests.py --python ../other/.venv/bin/python   # another build
    python bench/callgrind_requests.py --requests 5000 --workloads params

The server, bench/apps/catzilla_app.py (the app the HTTP benchmark measures), runs under
``valgrind --tool=callgrind`` with instrumentation off; a keep-alive client sends 200 requests
to warm it up, then
instrumentation goes on for ``--requests`` more, one at a time. Kernel time is not counted:
compare builds with it, not peers. Needs valgrind (apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

REQUESTS = {
    "params": b"GET /users/42/posts/7?q=x HTTP/1.1\r\nHost: t\r\n\r\n",
    "echo": (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
             b"Content-Length: 1024\r\n\r\n" + b"x" * 1024),
    "plaintext": b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port: int, deadline: float) -> socket.socket:
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=30)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def send(sock: socket.socket, request: bytes, n: int) -> None:
    for _ in range(n):
        sock.sendall(request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("the server closed the connection")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
        while len(rest) < length:
            rest += sock.recv(65536)


def count(python: str, workload: str, n: int, tmp: Path) -> float:
    script = HERE / "apps" / "catzilla_app.py"
    out = tmp / ("cg.%s.out" % workload)
    port = free_port()
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no",
         "--callgrind-out-file=%s" % out, python, str(script), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with connect(port, time.monotonic() + 60) as sock:
            send(sock, REQUESTS[workload], 200)
            subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            send(sock, REQUESTS[workload], n)
            subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        server.send_signal(2)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    totals = re.search(r"^totals: (\d+)", out.read_text(), re.M)
    return int(totals.group(1)) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter whose catzilla is measured")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--workloads", default="params,echo,plaintext")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.workloads.split(","):
            per = count(args.python, workload, args.requests, Path(tmp))
            print("%-10s %8.0f instructions/request" % (workload, per), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
