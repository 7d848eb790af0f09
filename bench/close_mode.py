"""What Connection: close req/s measures: the client's cost per connection.

    python bench/close_mode.py --rounds 8          # ~3 min

With Connection: close, wrk -t1 uses ~97% of its core, so req/s is what the client can do.
The client's cost per request depends on how the server ends each connection: an orderly close
(FIN, as RFC 9112 section 9.6 asks) costs the client more than a reset. This runs, interleaved,
wrk -t1 with Connection: close against:

- catzilla;
- the ceiling (fixed bytes, no parsing), closing with FIN, as in the suite;
- the same ceiling, closing with a reset (SO_LINGER 0);
- socketify, which resets its connections (wrk counts read errors).

and reports req/s, the server's and wrk's CPU per request, and wrk's socket read errors.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench import wrk  # noqa: E402
from bench.build import build_ceiling  # noqa: E402
from bench.download_marks import _serve  # noqa: E402
from bench.peers import PEERS, ensure_installed  # noqa: E402
from bench.server import cpu_seconds, free_port  # noqa: E402


def _configs() -> list[tuple[str, list[str], dict]]:
    py = sys.executable
    socketify = next(p for p in PEERS if p.name == "socketify")
    ensure_installed(socketify)
    ours = {"PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    return [
        ("catzilla", [py, "catzilla_app.py"], ours),
        ("ceiling, FIN", [py, "ceiling_app.py"], {}),
        ("ceiling, reset", [py, "ceiling_app.py", "--reset-on-close"], {}),
        ("socketify", [socketify.python, "socketify_app.py"], {}),
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--duration", type=float, default=4.0)
    args = ap.parse_args()
    compiled, how = build_ceiling()
    configs = _configs()
    lua = wrk.script("plaintext", close=True)
    results: dict[str, list[dict]] = {name: [] for name, _, _ in configs}
    for r in range(args.rounds):
        k = r % len(configs)
        for name, cmd, extra in configs[k:] + configs[:k]:
            port = free_port()
            proc = _serve(cmd + ["--port", str(port)], dict(os.environ, **extra), port)
            try:
                cpu0 = sum(cpu_seconds([proc.pid]).values())
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                out = wrk.run(f"http://127.0.0.1:{port}/plaintext", args.connections,
                              args.duration, lua)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu1 = sum(cpu_seconds([proc.pid]).values())
            finally:
                proc.terminate()
                proc.wait(10)
            if out.get("error"):
                raise RuntimeError(f"{name}: {out['error']}")
            n = out["requests"]
            out["server_us"] = (cpu1 - cpu0) / n * 1e6
            out["client_us"] = ((after.ru_utime - before.ru_utime)
                                + (after.ru_stime - before.ru_stime)) / n * 1e6
            results[name].append(out)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{name} {v[-1]['rps']:,.0f}" for name, v in results.items()), flush=True)

    def med(name: str, key: str) -> float:
        return statistics.median(v[key] for v in results[name])

    ref = med("catzilla", "rps")
    print(f"\n`python bench/close_mode.py {' '.join(sys.argv[1:])}`: wrk -t1 "
          f"-c{args.connections} -d{args.duration:g}s, Connection: close, GET /plaintext; "
          f"medians of {args.rounds} runs (ceiling: {how})\n")
    print("| server | req/s | min–max | ×catzilla | server CPU µs/req | wrk CPU µs/req | "
          "wrk read errors per run |\n|---|---:|---:|---:|---:|---:|---:|")
    for name, _, _ in configs:
        rps = [v["rps"] for v in results[name]]
        print(f"| {name} | {med(name, 'rps'):,.0f} | {min(rps):,.0f}–{max(rps):,.0f} | "
              f"{med(name, 'rps') / ref:.2f}× | {med(name, 'server_us'):.1f} | "
              f"{med(name, 'client_us'):.1f} | "
              f"{statistics.median(v.get('read_errors', 0) for v in results[name]):,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
