"""Server memory, interleaved: resident size idle after start, at the end of HTTP load, and a
second after it.

    python bench/memory.py --rounds 3                       # catzilla, socketify, ceiling
    python bench/memory.py --peers catzilla,aiohttp --rounds 3

The full suite measures the same three figures once per round after all its HTTP cases; this
runs a shorter load (plaintext and JSON, keep-alive at 64 and 512 connections, and plaintext with
Connection: close at 64, 3 s each) so that a change to start-up or per-connection memory can be
compared across peers in a few minutes. Resident size is summed over the server's processes,
from /proc/PID/statm. Every server starts as in the suite (ours from bench/.cache/venvs/local,
with byte-compiled sources).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import peers, workloads  # noqa: E402
from bench.build import build_ceiling  # noqa: E402
from bench.server import Server  # noqa: E402

LOAD = [("plaintext", 64, True), ("plaintext", 512, True), ("json", 64, True),
        ("json", 512, True), ("plaintext", 64, False)]
MIB = 2 ** 20


def measure(peer: peers.Peer, duration: float) -> dict[str, float]:
    server = Server(peer)
    server.start()
    try:
        out = {"idle": server.rss() / MIB, "end": 0.0}
        for name, conns, keepalive in LOAD:
            r = workloads.run_http(server, workloads.HTTP_BY_NAME[name], conns, keepalive,
                                   duration)
            if r.get("error"):
                raise RuntimeError(f"{peer.name}: {r['error']}")
            out["end"] = max(out["end"], r["rss_end"] / MIB)
        time.sleep(1.0)   # "a second after load" is the measurement itself
        out["after"] = server.rss() / MIB
        return out
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", default="catzilla,socketify,ceiling")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    args = ap.parse_args()
    chosen = [peers.BY_NAME[n] for n in args.peers.split(",")]
    if any(p.name == "ceiling" for p in chosen):
        build_ceiling()
    for p in chosen:
        peers.ensure_installed(p)
    results: dict[str, list[dict[str, float]]] = {p.name: [] for p in chosen}
    for r in range(args.rounds):
        for p in peers.rotated(chosen, r):
            results[p.name].append(measure(p, args.duration))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} {v[-1]['idle']:.1f}/{v[-1]['end']:.1f}/{v[-1]['after']:.1f}"
            for n, v in results.items() if v), flush=True)
    print(f"\n`python bench/memory.py {' '.join(sys.argv[1:])}`: resident MiB, medians of "
          f"{args.rounds} interleaved rounds (min–max)\n")
    print("| peer | idle after start | end of load | 1 s after load |\n|---|---:|---:|---:|")
    for p in chosen:
        cells = []
        for key in ("idle", "end", "after"):
            v = [x[key] for x in results[p.name]]
            cells.append(f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f})")
        print(f"| {p.label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
