"""wrk: build its Lua script for a workload, run it, parse its report."""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import time

from .peers import CACHE

WRK = shutil.which("wrk")
SCRIPTS = CACHE / "wrk"
ECHO_BODY = '{"data":"' + "x" * 1013 + '"}'  # 1024 bytes of JSON (Catzilla 0.2.3 415s text/plain)


def script(name: str, method: str = "GET", body: str | None = None, close: bool = False) -> str:
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines += [f"wrk.body = '{body}'", 'wrk.headers["Content-Type"] = "application/json"']
    if close:
        lines.append('wrk.headers["Connection"] = "close"')
    SCRIPTS.mkdir(parents=True, exist_ok=True)
    path = SCRIPTS / f"{name}{'-close' if close else ''}.lua"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse(out: str) -> dict:
    res = {"requests": 0, "rps": 0.0, "p50_ms": None, "p99_ms": None, "socket_errors": 0,
           "non2xx": 0}
    if m := re.search(r"(\d+) requests in ([\d.]+)(\w+)", out):
        res["requests"] = int(m.group(1))
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        res["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M):
            res[key] = _ms(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        res["socket_errors"] = sum(int(g) for g in m.groups())
        res["socket_error_detail"] = m.group(0)
        res["read_errors"] = int(m.group(2))   # the server reset the connection
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        res["non2xx"] = int(m.group(1))
    return res


def run(url: str, connections: int, duration: float, lua: str, timeout_s: float = 5) -> dict:
    cmd = [WRK, "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency",
           f"--timeout={timeout_s:g}s", "-s", lua, url]
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
    res = parse(proc.stdout)
    # wrk's own CPU (user+sys) as a share of one core: near 100% means the client, not the
    # server, capped requests/s (typical of Connection: close, where connect() dominates)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res["client_cpu_pct"] = used / wall * 100 if wall > 0 else None
    if proc.returncode or not res["requests"]:
        res["error"] = (proc.stderr or proc.stdout).strip()[-300:] or "wrk produced no requests"
    return res
