"""Back-pressure: stream GB to a client that reads at a fixed slow rate; sample server RSS.

    python bench/backpressure_rss.py --gb 2 --rate-mb 10      # ~200 s

Starts a catzilla app (a sync generator yielding 64 KiB blocks, chunked) in a subprocess,
reads its response at --rate-mb MB/s with a plain socket, samples the server's RSS from /proc
every second, and prints idle RSS, max RSS, max - idle, and bytes received.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import textwrap
import time

APP = textwrap.dedent("""
    import os, sys
    from catzilla import Catzilla, StreamingResponse
    app = Catzilla()
    BLOCK = os.urandom(65536)
    TOTAL = int(sys.argv[1])

    @app.get("/big")
    def big(request):
        def gen():
            for _ in range(TOTAL // len(BLOCK)):
                yield bytes(BLOCK)        # a new object per chunk, as a real producer makes
        return StreamingResponse(gen(), content_type="application/octet-stream")

    app.listen(port=0, host="127.0.0.1")
""")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--rate-mb", type=float, default=10.0)
    args = ap.parse_args()
    total = int(args.gb * (1 << 30))
    proc = subprocess.Popen([sys.executable, "-c", APP, str(total)], stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        port = int(line.split(":")[2].split()[0])
        time.sleep(1.0)
        idle = rss_kib(proc.pid)
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        per_tick = int(args.rate_mb * 1e6 / 20)
        received = 0
        peak = idle
        start = time.monotonic()
        next_sample = start
        tick = 0
        while True:
            want = per_tick
            while want > 0:
                data = s.recv(min(want, 1 << 20))
                if not data:
                    want = -1
                    break
                received += len(data)
                want -= len(data)
            if want < 0 or data.endswith(b"0\r\n\r\n"):
                break
            tick += 1
            time.sleep(max(0.0, start + tick / 20 - time.monotonic()))
            if time.monotonic() >= next_sample:
                peak = max(peak, rss_kib(proc.pid))
                next_sample += 1.0
        elapsed = time.monotonic() - start
        s.close()
        print(f"received {received / 1e9:.3f} GB in {elapsed:.0f} s "
              f"({received / elapsed / 1e6:.1f} MB/s); server RSS idle {idle / 1024:.1f} MiB, "
              f"peak {peak / 1024:.1f} MiB, peak - idle {(peak - idle) / 1024:.1f} MiB")
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
