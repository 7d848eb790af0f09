"""python -m bench [WORKLOAD ...] [--peers a,b] [--duration S] [--runs N] [--quick]

Runs every peer back to back, writes bench/results/<date>.json, bench/results/<date>.png and
bench/RESULTS.md. Workloads: http (plaintext json params echo), streaming (download ndjson sse
idle sleepy), or any of those names.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "bench"

from . import build, peers, report, streaming, workloads, wrk  # noqa: E402
from .server import Server, ServerError, raise_fd_limit  # noqa: E402

RESULTS = peers.RESULTS
GROUPS = {"http": [w.name for w in workloads.HTTP], "streaming": list(streaming.WORKLOADS)}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "kernel": platform.release(), "wrk": subprocess.run(
                ["wrk", "--version"], capture_output=True, text=True).stdout.split("[")[0].strip()
            if wrk.WRK else None}


class Progress:
    def __init__(self, total_seconds: float):
        self.left = total_seconds
        self.t0 = time.monotonic()
        self.spent_est = 0.0

    def step(self, estimate: float, text: str) -> None:
        """Print what runs next and the time left, scaled by how the estimates held so far."""
        elapsed = time.monotonic() - self.t0
        scale = elapsed / self.spent_est if self.spent_est > 5 else 1.0
        left = self.left * scale
        print(f"[{int(left // 60)}m{int(left % 60):02d}s left] {text}", flush=True)
        self.left -= estimate
        self.spent_est += estimate


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    ap.add_argument("workloads", nargs="*", help="http, streaming, or workload names (default all)")
    ap.add_argument("--peers", help="comma-separated subset of: " +
                    ",".join(p.name for p in peers.PEERS))
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--connections", default="64,512")
    ap.add_argument("--modes", default="keepalive,close", help="keepalive, close or both")
    ap.add_argument("--quick", action="store_true",
                    help="~1 s per workload, catzilla and the ceiling only, no venvs")
    ap.add_argument("--out", help="results file stem (default: the date)")
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.runs, args.connections = 1.0, 1, "64"
        args.peers = args.peers or "catzilla,ceiling"
    names = []
    for w in args.workloads or ["http", "streaming"]:
        names += GROUPS.get(w, [w])
    unknown = [n for n in names if n not in workloads.HTTP_BY_NAME and n not in streaming.WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s): {', '.join(unknown)}")
    args.names = names
    args.peer_list = [peers.BY_NAME[n] for n in args.peers.split(",")] if args.peers \
        else list(peers.PEERS)
    args.conns = [int(c) for c in args.connections.split(",")]
    args.keepalive = [m == "keepalive" for m in args.modes.split(",")]
    return args


def run_http_round(peer, args, cases, res, progress) -> None:
    """One fresh server: idle memory, every HTTP case once, memory at end and after."""
    mem = res["memory"].setdefault(peer.name, {"idle": [], "end_of_load": [], "after": []})
    try:
        server = Server(peer)
        server.start()
    except ServerError as exc:
        res["peers"][peer.name]["error"] = f"start failed: {exc}"
        print(f"  {peer.name}: start failed: {exc}", flush=True)
        return
    try:
        mem["idle"].append(server.rss())
        bad = {wl.name: workloads.validate(server, wl) for wl in {c[0] for c in cases}}
        if peer.name == "ceiling":  # answers fixed bytes to anything: nothing to validate
            bad = dict.fromkeys(bad)
        peak = 0
        for wl, conns, ka in cases:
            key = workloads.case_key(wl, conns, ka)
            slot = res["http"][key]["results"].setdefault(peer.name, {"runs": []})
            progress.step(args.duration + 0.5, f"{peer.label}: {key}")
            if bad[wl.name]:
                slot["na"] = bad[wl.name]
                print(f"    n/a: {bad[wl.name]}")
                continue
            if not server.alive():
                slot["na"] = f"server died: {server.log_tail()}"
                continue
            r = workloads.run_http(server, wl, conns, ka, args.duration)
            slot["runs"].append(r)
            peak = max(peak, r["rss_end"])
            flag = " ERRORS" if r.get("error") or r["socket_errors"] or r["non2xx"] else ""
            cpu = f"{r['cpu_us_per_req']:.1f}" if r["cpu_us_per_req"] else "?"
            print(f"    {r['rps']:,.0f} req/s, {cpu} us CPU/req, p99 {r['p99_ms']} ms{flag}",
                  flush=True)
        mem["end_of_load"].append(peak)
        time.sleep(1.0)  # "a second after load" is the measurement itself
        mem["after"].append(server.rss())
    finally:
        server.stop()


def main(argv=None) -> int:
    args = parse_args(argv)
    raise_fd_limit()
    stamp = args.out or datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    command = "python -m bench " + " ".join(shlex.quote(a) for a in
                                            (argv if argv is not None else sys.argv[1:]))
    res = {"meta": {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                    "command": command.strip(), "machine": machine(), "duration": args.duration,
                    "runs": args.runs, "connections": args.conns, "quick": args.quick},
           "peers": {}, "http": {}, "memory": {}, "streaming": {}}
    http_names = [n for n in args.names if n in workloads.HTTP_BY_NAME]
    stream_names = [n for n in args.names if n in streaming.WORKLOADS]
    if http_names and not wrk.WRK:
        print("wrk is not installed: HTTP workloads skipped", file=sys.stderr)
        http_names = []
    cases = [(workloads.HTTP_BY_NAME[n], c, ka) for n in http_names for c in args.conns
             for ka in args.keepalive]
    for wl, c, ka in cases:
        res["http"][workloads.case_key(wl, c, ka)] = {
            "workload": wl.name, "title": wl.title, "connections": c, "keepalive": ka,
            "results": {}}

    print(f"bench: {len(args.peer_list)} peers, {len(cases)} HTTP cases x {args.runs} runs, "
          f"{len(stream_names)} streaming workloads", flush=True)
    if any(p.name == "ceiling" for p in args.peer_list):
        compiled, how = build.build_ceiling()
        res["meta"]["ceiling"] = how
        print(f"ceiling: {how}")
    ready = []
    for peer in args.peer_list:
        info = res["peers"][peer.name] = {"label": peer.label, "note": peer.note,
                                          "packages": list(peer.packages)}
        try:
            peers.ensure_installed(peer)
        except peers.PeerError as exc:
            info["error"] = str(exc)
            print(f"  {peer.name}: {exc}", flush=True)
            continue
        info["versions"] = peers.installed_versions(peer)
        ready.append(peer)

    stream_plan = streaming.Plan(args) if stream_names else None
    est = len(ready) * args.runs * (len(cases) * (args.duration + 0.5) + 3)
    if stream_plan:
        est += stream_plan.estimate(stream_names, ready)
    progress = Progress(est)
    for r in range(args.runs):
        for peer in peers.rotated(ready, r):
            if cases:
                print(f"run {r + 1}/{args.runs}: {peer.label}", flush=True)
                run_http_round(peer, args, cases, res, progress)
    if stream_plan:
        stream_plan.run(stream_names, ready, res, progress)

    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"{stamp}.json"
    json_path.write_text(json.dumps(res, indent=1))
    png = report.plot(res, RESULTS / f"{stamp}.png")
    md = report.markdown(res, json_path.name, png.name if png else None)
    # a smoke run must not replace the tables of the last full run
    md_path = RESULTS / f"{stamp}.md" if args.quick else peers.BENCH / "RESULTS.md"
    md_path.write_text(md)
    print(f"wrote {json_path}, {md_path}" + (f", {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
