"""Check catzilla's own libuv declarations against the pinned release's real headers.

    python vendor/libuv/check_decls.py

Downloads the pinned uvloop sdist with pip (a registry package; nothing is committed), checks
its sha256, extracts libuv's include/ into vendor/libuv/fetched/ (git-ignored), then compiles one
small C program twice, against libuv's uv.h and against catzilla/includes/catzilla_uv.h, and
compares every constant and layout fact catzilla relies on. Exits non-zero on any difference.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FETCHED = HERE / "fetched"


def read_pin() -> dict[str, str]:
    pin = {}
    for line in (HERE / "PIN").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            pin[k.strip()] = v.strip()
    return pin


def fetch_headers(pin: dict[str, str]) -> Path:
    include = FETCHED / "include"
    if (include / "uv.h").exists():
        return include
    requirement = pin["source_package"].split()[0]
    FETCHED.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", "-d", tmp, requirement],
            check=True,
        )
        (sdist,) = Path(tmp).glob("*.tar.gz")
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != pin["source_sha256"]:
            raise SystemExit("sha256 mismatch for %s: %s" % (sdist.name, digest))
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if "/vendor/libuv/include/" in m.name]
            for m in members:
                m.name = m.name.split("/vendor/libuv/", 1)[1]
            tar.extractall(FETCHED, members=members, filter="data")
    return include


PROBE = r"""
#include <stdio.h>
#include <stddef.h>
#ifdef REAL
#include <uv.h>
#define WQS_OFFSET ((long)offsetof(uv_stream_t, write_queue_size))
#define HANDLE_SIZE ((long)sizeof(uv_handle_t))
#define DATA_OFFSETS ((long)offsetof(uv_handle_t, data) + (long)offsetof(uv_tcp_t, data) \
    + (long)offsetof(uv_timer_t, data) + (long)offsetof(uv_async_t, data) \
    + (long)offsetof(uv_write_t, data) + (long)offsetof(uv_shutdown_t, data) \
    + (long)offsetof(uv_req_t, data))
#else
#include "catzilla_uv.h"
#define WQS_OFFSET (-1L)
#define HANDLE_SIZE (-1L)
#define DATA_OFFSETS (0L)
#endif
int main(void) {
    printf("UV_ASYNC %d\nUV_HANDLE %d\nUV_STREAM %d\nUV_TCP %d\nUV_TIMER %d\n",
           UV_ASYNC, UV_HANDLE, UV_STREAM, UV_TCP, UV_TIMER);
    printf("UV_WRITE %d\nUV_SHUTDOWN %d\n", UV_WRITE, UV_SHUTDOWN);
    printf("UV_EOF %d\nUV_EAGAIN %d\nUV_ECANCELED %d\nUV_ECONNRESET %d\nUV_EPIPE %d\n",
           UV_EOF, UV_EAGAIN, UV_ECANCELED, UV_ECONNRESET, UV_EPIPE);
    printf("sizeof_buf %zu\nbuf_base %zu\nbuf_len %zu\n", sizeof(uv_buf_t),
           offsetof(uv_buf_t, base), offsetof(uv_buf_t, len));
    printf("data_offsets %ld\n", DATA_OFFSETS);
#ifdef REAL
    printf("version_hex %d\n", UV_VERSION_HEX);
    printf("wqs_offset_is_handle_size %d\n", WQS_OFFSET == HANDLE_SIZE);
#else
    printf("version_hex %d\n", CATZILLA_UV_VERSION_HEX);
    printf("wqs_offset_is_handle_size 1\n");
#endif
    return 0;
}
"""


def probe(include_dir: Path, real: bool) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        exe = Path(tmp) / "probe"
        src.write_text(PROBE)
        cmd = [os.environ.get("CC", "cc"), "-I", str(include_dir), str(src), "-o", str(exe)]
        if real:
            cmd.insert(1, "-DREAL")
        subprocess.run(cmd, check=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return dict(line.split() for line in out.splitlines())


def main() -> int:
    pin = read_pin()
    real = probe(fetch_headers(pin), real=True)
    ours = probe(ROOT / "catzilla" / "includes", real=False)
    bad = {k: (ours.get(k), v) for k, v in real.items() if ours.get(k) != v}
    for key, (o, r) in sorted(bad.items()):
        print("MISMATCH %-28s ours=%s libuv=%s" % (key, o, r))
    if not bad:
        print("catzilla_uv.h matches libuv %s (%d facts checked)" % (pin["libuv_version"], len(real)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
