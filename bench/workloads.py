"""The HTTP workloads: what each one requests, how its answer is checked, and one wrk run."""

from __future__ import annotations

import dataclasses
import http.client
import json
from typing import Callable

from . import wrk
from .server import Server, cpu_delta


@dataclasses.dataclass(frozen=True)
class HttpWorkload:
    name: str
    title: str
    path: str
    method: str = "GET"
    body: str | None = None
    check: Callable[[bytes], bool] = lambda body: True


def _json_is(expected):
    def check(body: bytes) -> bool:
        try:
            return json.loads(body) == expected
        except ValueError:
            return False
    return check


HTTP = [
    HttpWorkload("plaintext", "plaintext hello", "/plaintext",
                 check=lambda b: b == b"Hello, World!"),
    HttpWorkload("json", "JSON hello", "/json", check=_json_is({"message": "Hello, World!"})),
    HttpWorkload("params", "2 path params + query", "/users/42/posts/7?q=x",
                 check=_json_is({"user_id": "42", "post_id": "7", "q": "x"})),
    HttpWorkload("echo", "1 KiB POST echo", "/echo", "POST", wrk.ECHO_BODY,
                 check=lambda b: b == wrk.ECHO_BODY.encode()),
]
HTTP_BY_NAME = {w.name: w for w in HTTP}


def case_key(wl: HttpWorkload, connections: int, keepalive: bool) -> str:
    return f"{wl.name}/c{connections}/{'keepalive' if keepalive else 'close'}"


def validate(server: Server, wl: HttpWorkload) -> str | None:
    """None if the server answers this workload correctly, else why not."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        headers = {"Content-Type": "application/json"} if wl.body is not None else {}
        conn.request(wl.method, wl.path, body=wl.body, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return f"request failed: {exc!r}"
    if resp.status != 200:
        return f"status {resp.status}: {body[:80]!r}"
    if not wl.check(body):
        return f"wrong body: {body[:80]!r}"
    return None


def run_http(server: Server, wl: HttpWorkload, connections: int, keepalive: bool,
             duration: float) -> dict:
    lua = wrk.script(wl.name, wl.method, wl.body, close=not keepalive)
    before = server.cpu()
    res = wrk.run(f"http://127.0.0.1:{server.port}{wl.path}", connections, duration, lua)
    after = server.cpu()
    res["rss_end"] = server.rss()
    res["cpu_s"] = cpu_delta(before, after)
    res["cpu_us_per_req"] = res["cpu_s"] / res["requests"] * 1e6 if res["requests"] else None
    if not server.alive():
        res["error"] = f"server died: {server.log_tail()}"
    return res
