"""Generator download throughput against the write marks, beside plain sendfile.

    python bench/download_marks.py --rounds 4          # ~2 min

A 1 GiB download through the guide's file_streamer (64 KiB chunks from file.read) with several
(high, low) write-mark settings, and the same file through the plain sendfile server (the
loopback ceiling). The settings take turns within each round, each on a fresh server with three
downloads by curl, so drift on a noisy machine hits them all alike. Prints a Markdown table:
median GB/s, min-max and the ratio to sendfile's median.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.server import free_port  # noqa: E402
from bench.streaming import data_file  # noqa: E402

APP = textwrap.dedent("""
    import sys
    import common
    from catzilla import Catzilla, StreamingResponse
    app = Catzilla(write_high_water=int(sys.argv[1]), write_low_water=int(sys.argv[2]))

    @app.get("/chunks")
    def chunks(request):
        return StreamingResponse(common.file_chunks(), content_type="application/octet-stream")

    app.listen(port=int(sys.argv[3]), host="127.0.0.1")
""")

SETTINGS = [(256 << 10, 64 << 10), (512 << 10, 128 << 10), (1 << 20, 512 << 10)]


def _curl(url: str) -> tuple[int, float]:
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total}",
                          url], capture_output=True, text=True, timeout=120).stdout.split()
    return int(out[0]), float(out[1])


def _serve(cmd: list[str], env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=HERE / "apps", env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"server did not start: {cmd}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--downloads", type=int, default=3, help="per server start")
    args = ap.parse_args()
    path = data_file(1 << 30)
    env = dict(os.environ, BENCH_DATA_FILE=path,
               PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    configs = [("plain sendfile (no framework)", None)] + [
        (f"catzilla, marks {hi >> 10}/{lo >> 10} KiB", (hi, lo)) for hi, lo in SETTINGS]
    results: dict[str, list[float]] = {name: [] for name, _ in configs}
    for r in range(args.rounds):
        for name, marks in configs:
            port = free_port()
            if marks is None:
                cmd = [sys.executable, "sendfile_app.py", "--port", str(port)]
            else:
                cmd = [sys.executable, "-c", APP, str(marks[0]), str(marks[1]), str(port)]
            proc = _serve(cmd, env, port)
            try:
                route = "/file" if marks is None else "/chunks"
                for _ in range(args.downloads):
                    size, secs = _curl(f"http://127.0.0.1:{port}{route}")
                    if size != 1 << 30:
                        raise RuntimeError(f"{name}: {size} bytes")
                    results[name].append(size / secs / 1e9)
            finally:
                proc.terminate()
                proc.wait(10)
            print(f"round {r + 1}/{args.rounds}: {name}: "
                  + " ".join(f"{v:.2f}" for v in results[name][-args.downloads:]), flush=True)
    ceiling = statistics.median(results[configs[0][0]])
    print(f"\n`python bench/download_marks.py --rounds {args.rounds}`: 1 GiB, GB/s, "
          f"{args.rounds * args.downloads} downloads each\n")
    print("| server | median GB/s | min–max | × sendfile |\n|---|---:|---:|---:|")
    for name, _ in configs:
        v = results[name]
        print(f"| {name} | {statistics.median(v):.2f} | {min(v):.2f}–{max(v):.2f} | "
              f"{statistics.median(v) / ceiling:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
