"""The streaming workloads: large downloads, NDJSON, SSE fan-out, idle subscribers, and plain
requests while sync streams sleep. The client is bench/loadgen (C, epoll), curl for downloads."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time

from . import build, wrk
from .peers import CACHE, SENDFILE, rotated
from .server import Server, ServerError, cpu_delta, free_port

WORKLOADS = {
    "download": "Large download (1 GiB to curl)",
    "ndjson": "NDJSON records per second (the guide's Data Processing Pipeline, no sleeps)",
    "sse": "SSE fan-out (1 publisher at 100 events/s)",
    "idle": "Idle SSE subscribers: server memory per subscriber",
    "sleepy": "Plain-request latency while 200 sync streams sleep",
}


def data_file(size: int) -> str:
    """A file of real (not sparse) bytes under bench/.cache, written once."""
    path = CACHE / f"data-{size >> 20}MiB.bin"
    if not path.exists() or path.stat().st_size != size:
        block = os.urandom(1 << 20)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for _ in range(size >> 20):
                f.write(block)
        tmp.rename(path)
    return str(path)


def route_status(server: Server, method: str, path: str) -> int:
    """Status code of a request, reading no further than the status line."""
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
            line = s.recv(64).split(b"\r\n")[0].split()
            return int(line[1]) if len(line) > 1 else 0
    except (OSError, ValueError):
        return 0


class Plan:
    def __init__(self, args):
        self.args = args
        quick = args.quick
        self.file_size = (64 if quick else 1024) << 20
        self.records = 10_000 if quick else 100_000
        self.subscribers = 100 if quick else 1000
        self.sse_seconds = 1.0 if quick else max(3.0, args.duration)
        self.idle_conns = 1000 if quick else 10_000
        self.sleepers = 200
        self.loadgen = None
        self.loadgen_note = None

    def estimate(self, names, peers) -> float:
        per = {"download": 6, "ndjson": 4, "sse": self.sse_seconds + 6, "idle": 12,
               "sleepy": self.args.duration + 4}
        return sum(per[n] for n in names) * (len(peers) + 1) * self.args.runs

    # -- helpers -------------------------------------------------------------------------------
    def _loadgen(self, server, mode, path, conns, duration, method="GET", ready_timeout=30):
        cmd = [self.loadgen, "--port", str(server.port), "--mode", mode, "--path", path,
               "--method", method, "--conns", str(conns), "--duration", f"{duration:g}",
               "--ready-timeout", f"{ready_timeout:g}"]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)

    @staticmethod
    def _finish(proc, timeout) -> dict:
        out, _ = proc.communicate(timeout=timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {"error": "loadgen printed nothing"}

    @staticmethod
    def _wait_ready(proc) -> int:
        line = proc.stdout.readline()
        return int(line.split()[1]) if line.startswith("READY") else 0

    def selfcheck(self) -> dict:
        """Receive rate of the load generator against a C server blasting pre-formatted events."""
        port = free_port()
        blaster = subprocess.Popen([str(build.BLASTER), "--port", str(port), "--duration", "6"],
                                   stdout=subprocess.PIPE, text=True)
        try:
            blaster.stdout.readline()
            out = subprocess.run([self.loadgen, "--port", str(port), "--mode", "sse", "--path",
                                  "/", "--conns", str(self.subscribers), "--duration", "2"],
                                 capture_output=True, text=True, timeout=30).stdout
            r = json.loads(out.strip().splitlines()[-1])
            return {"events_per_s": r["events"] / r["elapsed"], "conns": self.subscribers,
                    "mb_per_s": r["bytes"] / r["elapsed"] / 1e6}
        finally:
            blaster.kill()
            blaster.wait()

    # -- workloads -----------------------------------------------------------------------------
    def download(self, server, route) -> dict:
        url = f"http://127.0.0.1:{server.port}{route}"
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w",
                              "%{size_download} %{time_total} %{http_code}", url],
                             capture_output=True, text=True, timeout=300).stdout.split()
        size, secs, code = int(out[0]), float(out[1]), out[2]
        r = {"value": size / secs / 1e9 if secs else None, "bytes": size, "seconds": secs,
             "rss_after_mb": server.rss() / 2**20}
        if code != "200" or size != self.file_size:
            r["error"] = f"status {code}, {size} of {self.file_size} bytes"
        return r

    def ndjson(self, server) -> dict:
        before = server.cpu()
        r = self._finish(self._loadgen(server, "lines", "/process-stream", 1, 120, "POST"), 180)
        r["cpu_s"] = cpu_delta(before, server.cpu())
        r["value"] = r["lines"] / r["elapsed"] if r.get("elapsed") else None
        if r.get("lines") != self.records + 1 or not r.get("completed"):
            r["error"] = (f"{r.get('lines')} lines of {self.records + 1}, "
                          f"completed={r.get('completed')}")
        return r

    def sse(self, server) -> dict:
        secs = self.sse_seconds
        proc = self._loadgen(server, "sse", "/sse", self.subscribers, 30 + secs + 3,
                             ready_timeout=15)
        connected = self._wait_ready(proc)
        before = server.cpu()
        t0 = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("POST", f"/publish?rate=100&seconds={secs:g}")
            conn.getresponse().read()
        except (OSError, http.client.HTTPException) as exc:
            proc.kill()
            proc.wait()
            return {"error": f"publish failed: {exc!r}"}
        # let the publisher run, plus a second for the last events to arrive
        time.sleep(max(0.0, secs + 1.0 - (time.monotonic() - t0)))
        proc.terminate()  # loadgen stops and prints its totals
        r = self._finish(proc, 60)
        return r | self._sse_figures(r, connected, secs, cpu_delta(before, server.cpu()))

    def _sse_figures(self, r, connected, secs, cpu):
        ideal = self.subscribers * 100
        return {"connected_at_publish": connected, "value": r.get("events", 0) / secs,
                "ideal_per_s": ideal, "delivered_pct": 100 * r.get("events", 0) / secs / ideal,
                "cpu_s": cpu}

    def idle(self, server) -> dict:
        base = server.rss()
        proc = self._loadgen(server, "sse", "/sse", self.idle_conns, 60, ready_timeout=40)
        n = self._wait_ready(proc)
        rss = server.rss()
        proc.kill()
        proc.wait()
        r = {"subscribers": n, "rss_idle_mb": base / 2**20, "rss_with_mb": rss / 2**20,
             "value": (rss - base) / n / 1024 if n else None}
        if n < self.idle_conns:
            r["error"] = f"only {n} of {self.idle_conns} subscribers got headers"
        return r

    def sleepy(self, server) -> dict:
        d = self.args.duration
        proc = self._loadgen(server, "lines", "/sleepy", self.sleepers, d + 20, ready_timeout=10)
        n = self._wait_ready(proc)
        lua = wrk.script("plaintext")
        r = wrk.run(f"http://127.0.0.1:{server.port}/plaintext", 64, d, lua)
        proc.kill()
        proc.wait()
        r |= {"streams": n, "value": r.get("p99_ms")}
        if n < self.sleepers:
            r["error"] = f"only {n} of {self.sleepers} sleeping streams started"
        return r

    # -- driver --------------------------------------------------------------------------------
    def run(self, names, peers, res, progress) -> None:
        self.loadgen = build.build_loadgen()
        check = self.selfcheck()
        res["meta"]["loadgen"] = (f"C epoll loadgen; self-check against a C event blaster: "
                                  f"{check['events_per_s']:,.0f} events/s received over "
                                  f"{check['conns']} connections ({check['mb_per_s']:,.0f} MB/s)")
        res["meta"]["loadgen_selfcheck"] = check
        print(res["meta"]["loadgen"], flush=True)
        env = {"BENCH_DATA_FILE": data_file(self.file_size), "BENCH_RECORDS": str(self.records)}
        plan = []  # (result key, title, unit, description, columns, digits, method, route, fn)
        if "download" in names:
            for kind, route in (("file", "/file"), ("chunks", "/chunks")):
                how = "file response" if kind == "file" else "generator of 64 KiB chunks"
                plan.append((f"download/{kind}", f"Download {self.file_size >> 20} MiB via {how}",
                             "GB/s", "curl -s -o /dev/null; GB/s = 10^9 bytes per second.",
                             [("rss_after_mb", "RSS after (MiB)", 0)], 2, "GET", route,
                             lambda s, route=route: self.download(s, route)))
        if "ndjson" in names:
            plan.append(("ndjson", f"NDJSON: {self.records:,} records, one client",
                         "records/s", "POST /process-stream; loadgen counts lines.",
                         [("elapsed", "seconds", 2), ("cpu_s", "server CPU s", 2)], 0,
                         "POST", "/process-stream", self.ndjson))
        if "sse" in names:
            plan.append(("sse", f"SSE fan-out: {self.subscribers} subscribers, 100 events/s for "
                         f"{self.sse_seconds:g} s", "events/s",
                         f"Ideal {self.subscribers * 100:,} events/s. Latency = receive time - "
                         "publish timestamp carried in the event.",
                         [("delivered_pct", "% of ideal", 1), ("connected_at_publish",
                          "connected", 0), ("lat_p50_ms", "p50 ms", 1),
                          ("lat_p99_ms", "p99 ms", 1), ("cpu_s", "server CPU s", 2)], 0,
                         "GET", "/sse", self.sse))
        if "idle" in names:
            plan.append(("idle", f"Idle SSE: {self.idle_conns:,} subscribers", "KiB/subscriber",
                         "(RSS with N subscribers - RSS idle) / N; heartbeats every 5 s.",
                         [("subscribers", "subscribers", 0), ("rss_with_mb", "RSS with (MiB)", 0)],
                         1, "GET", "/sse", self.idle))
        if "sleepy" in names:
            plan.append(("sleepy", f"GET /plaintext (wrk -c64) while {self.sleepers} sync streams "
                         "sleep", "p99 ms", "Lower is better; 200 connections hold GET /sleepy "
                         "(a sync generator: yield, time.sleep(0.5)).",
                         [("p50_ms", "p50 ms", 2), ("rps", "req/s", 0)], 2, "GET", "/sleepy",
                         self.sleepy))
        for key, title, unit, desc, cols, digits, *_ in plan:
            res["streaming"][key] = {"title": title, "unit": unit, "description": desc,
                                     "columns": cols, "digits": digits, "results": {}}
        targets = [p for p in peers if p.name != "ceiling"]
        for r in range(self.args.runs):
            for key, _title, unit, _desc, _cols, digits, method, route, fn in plan:
                # the plain sendfile server is the ceiling of both downloads (it sends the
                # same file whatever the path)
                who = targets + ([SENDFILE] if key.startswith("download/") else [])
                for peer in rotated(who, r):
                    slot = res["streaming"][key]["results"].setdefault(peer.name, {"runs": []})
                    res["peers"].setdefault(peer.name, {"label": peer.label, "note": peer.note})
                    progress.step(5, f"{peer.label}: {key} (run {r + 1})")
                    if slot.get("na"):
                        continue
                    try:
                        with Server(peer, env=env) as server:
                            status = route_status(server, method, route) \
                                if peer is not SENDFILE else 200
                            if status in (404, 405, 501):
                                slot["na"] = f"no {method} {route} in the app ({status})"
                                print(f"    n/a: {slot['na']}")
                                continue
                            out = fn(server)
                            if not server.alive():
                                out["error"] = f"server died: {server.log_tail()}"
                    except (ServerError, OSError, subprocess.SubprocessError, ValueError,
                            KeyError, IndexError) as exc:
                        out = {"error": f"{type(exc).__name__}: {exc}"[:200]}
                    slot["runs"].append(out)
                    v = out.get("value")
                    print(f"    {v:,.{digits}f} {unit}" if v is not None else "    no value",
                          out.get("error", ""), flush=True)
