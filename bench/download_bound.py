"""What bounds a generator download: catzilla beside plain servers with no framework.

    python bench/download_bound.py --rounds 4          # ~3 min

The issue measures the 64 KiB generator download against plain sendfile. A generator's body
cannot take sendfile's path: every chunk is copied from the page cache by file.read and into the
socket by send, and without a known length it goes out with chunked framing, which curl must
decode. This runs, interleaved, 1 GiB to curl from:

- plain sendfile (the ceiling of the issue);
- a C read()/send() loop with Content-Length (the two copies, nothing else);
- a Python thread doing file.read/send with Content-Length, and the same with chunked framing
  (what any Python server of a generator pays before its framework costs anything);
- catzilla serving the guide's file_streamer (64 KiB chunks) at the default write marks.

Besides GB/s it reports the CPU seconds per GB of the server (all its threads, /proc/PID/stat)
and of curl (rusage of the child), medians over every download.

`--chunk-sizes 65475,262144` adds catzilla serving the same generator with other read sizes
(what the generator's own chunk size is worth: 65,475 bytes and its framing fill one loopback
segment).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.build import build_readsend  # noqa: E402
from bench.download_marks import APP, _serve  # noqa: E402
from bench.server import cpu_seconds, free_port  # noqa: E402
from bench.streaming import data_file  # noqa: E402

SIZE = 1 << 30

SIZED_APP = textwrap.dedent("""
    import sys
    import common
    from catzilla import Catzilla, StreamingResponse
    app = Catzilla()
    size = int(sys.argv[1])

    @app.get("/chunks")
    def chunks(request):
        return StreamingResponse(common.file_chunks(chunk_size=size),
                                 content_type="application/octet-stream")

    app.listen(port=int(sys.argv[2]), host="127.0.0.1")
""")


def _configs(readsend: str, path: str, sizes: list[int]) -> list[tuple[str, str, object]]:
    py = sys.executable
    return [
        ("plain sendfile (no framework)", "/file",
         lambda p: [py, "sendfile_app.py", "--port", str(p)]),
        ("C read/send loop, Content-Length", "/file", lambda p: [readsend, str(p), path]),
        ("Python read/send thread, Content-Length", "/file",
         lambda p: [py, "readsend_app.py", "--port", str(p), "--framing", "length"]),
        ("Python read/send thread, chunked", "/file",
         lambda p: [py, "readsend_app.py", "--port", str(p), "--framing", "chunked"]),
        ("catzilla, the guide's file_streamer", "/chunks",
         lambda p: [py, "-c", APP, str(256 << 10), str(64 << 10), str(p)]),
    ] + [(f"catzilla, the same generator reading {n:,} bytes", "/chunks",
          lambda p, n=n: [py, "-c", SIZED_APP, str(n), str(p)]) for n in sizes]


def _download(url: str, server_pid: int) -> tuple[float, float, float]:
    """(GB/s, server CPU s/GB, curl CPU s/GB) of one download."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = sum(cpu_seconds([server_pid]).values())
    t0 = time.perf_counter()
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", url],
                         capture_output=True, text=True, timeout=120).stdout
    secs = time.perf_counter() - t0
    cpu1 = sum(cpu_seconds([server_pid]).values())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if int(out or 0) != SIZE:
        raise RuntimeError(f"{url}: {out} bytes")
    curl = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    gb = SIZE / 1e9
    return gb / secs, (cpu1 - cpu0) / gb, curl / gb


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--downloads", type=int, default=3, help="per server start")
    ap.add_argument("--chunk-sizes", default="",
                    help="comma-separated read sizes for more catzilla rows")
    args = ap.parse_args()
    path = data_file(SIZE)
    env = dict(os.environ, BENCH_DATA_FILE=path,
               PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    sizes = [int(x) for x in args.chunk_sizes.split(",") if x.strip()]
    configs = _configs(build_readsend(), path, sizes)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in configs}
    for r in range(args.rounds):
        for name, route, cmd in configs:
            port = free_port()
            proc = _serve(cmd(port), env, port)
            try:
                for _ in range(args.downloads):
                    results[name].append(_download(f"http://127.0.0.1:{port}{route}", proc.pid))
            finally:
                proc.terminate()
                proc.wait(10)
            print(f"round {r + 1}/{args.rounds}: {name}: "
                  + " ".join(f"{v[0]:.2f}" for v in results[name][-args.downloads:]), flush=True)

    def med(name: str, i: int) -> float:
        return statistics.median(v[i] for v in results[name])

    def paired(name: str) -> list[float]:
        """Each round's median against sendfile's median in the same round."""
        n = args.downloads
        out = []
        for r in range(args.rounds):
            mine = statistics.median(v[0] for v in results[name][r * n:(r + 1) * n])
            ref = statistics.median(v[0] for v in results[configs[0][0]][r * n:(r + 1) * n])
            out.append(mine / ref)
        return out

    ceiling = med(configs[0][0], 0)
    extra = f" --chunk-sizes {args.chunk_sizes}" if sizes else ""
    print(f"\n`python bench/download_bound.py --rounds {args.rounds}{extra}`: 1 GiB to curl, "
          f"{args.rounds * args.downloads} downloads each, medians\n")
    print("| server | GB/s | min–max | × sendfile | × sendfile per round: median (min–max) "
          "| server CPU s/GB | curl CPU s/GB |\n|---|---:|---:|---:|---:|---:|---:|")
    for name, _, _ in configs:
        rates = [v[0] for v in results[name]]
        rounds = paired(name)
        print(f"| {name} | {med(name, 0):.2f} | {min(rates):.2f}–{max(rates):.2f} | "
              f"{med(name, 0) / ceiling:.2f}× | {statistics.median(rounds):.2f}× "
              f"({min(rounds):.2f}–{max(rounds):.2f}) | {med(name, 1):.3f} | {med(name, 2):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
