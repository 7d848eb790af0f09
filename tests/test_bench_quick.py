"""`python -m bench --quick` runs end to end and measures catzilla's plaintext without errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def wrk_installed():
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is not installed (CI installs it with apt-get install wrk)")
        pytest.skip("wrk is not installed: apt-get install wrk to run the benchmark smoke test")


@pytest.mark.timeout(120)
def test_bench_quick(wrk_installed):
    stem = "pytest-quick"
    out = REPO / "bench" / "results" / f"{stem}.json"
    results_md = REPO / "bench" / "RESULTS.md"
    saved_md = results_md.read_bytes() if results_md.exists() else None
    try:
        proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", stem],
                              cwd=REPO, capture_output=True, text=True, timeout=110)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        res = json.loads(out.read_text())
        assert out.with_suffix(".md").exists()   # the smoke run's own tables
    finally:
        replaced = saved_md is not None and results_md.read_bytes() != saved_md
        if replaced:   # put the committed results back before failing
            results_md.write_bytes(saved_md)
        for leftover in out.parent.glob(f"{stem}.*"):
            leftover.unlink()
    assert not replaced, "a quick run replaced bench/RESULTS.md"
    case = res["http"]["plaintext/c64/keepalive"]["results"]["catzilla"]
    assert not case.get("na"), case.get("na")
    [run] = case["runs"]
    assert run["rps"] > 0
    assert not run.get("error"), run.get("error")
    assert run["socket_errors"] == 0 and run["non2xx"] == 0
