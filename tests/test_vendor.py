"""Our own libuv declarations must match the pinned libuv release's real headers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(330)   # pip prepares the sdist's metadata: slow on a loaded machine
def test_libuv_declarations_match_pinned_headers():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "vendor" / "libuv" / "check_decls.py")],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0 and "MISMATCH" not in proc.stdout and not os.environ.get("CI"):
        pytest.skip("could not fetch the pinned libuv headers (needs PyPI): " + proc.stderr[-300:])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "matches libuv 1.52.1" in proc.stdout


def test_runtime_libuv_is_not_older_than_declarations():
    import uvloop.loop

    from catzilla import _core, _uvlink

    runtime = uvloop.loop.libuv_get_version()
    assert runtime >= _core.LIBUV_VERSION_HEX
    assert _uvlink.LIBUV_VERSION >= _uvlink.REQUIRED_LIBUV


def test_old_libuv_is_refused_with_a_clear_message(monkeypatch):
    import uvloop.loop

    from catzilla import _uvlink

    monkeypatch.setattr(uvloop.loop, "libuv_get_version", lambda: (1 << 16) | (40 << 8))
    with pytest.raises(ImportError, match=r"needs libuv >= 1\.52\.1 .* carries libuv 1\.40\.0"):
        _uvlink.link()
