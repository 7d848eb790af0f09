"""Bench-time builds into bench/.cache/: the Cython ceiling and the C load generator."""

from __future__ import annotations

import shutil
import subprocess
import sys

from .peers import APPS, BENCH, CACHE

LOADGEN_SRC = BENCH / "loadgen" / "loadgen.c"
LOADGEN = CACHE / "loadgen" / "loadgen"
BLASTER_SRC = BENCH / "loadgen" / "blaster.c"
BLASTER = CACHE / "loadgen" / "blaster"
READSEND_SRC = APPS / "readsend.c"
READSEND = CACHE / "readsend" / "readsend"


def _stale(target, *sources) -> bool:
    return not target.exists() or any(s.stat().st_mtime > target.stat().st_mtime for s in sources)


def build_ceiling() -> tuple[bool, str]:
    """cythonize apps/ceiling_proto.py into .cache/ceiling; (compiled?, message)."""
    out = CACHE / "ceiling"
    src = APPS / "ceiling_proto.py"
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob("ceiling_proto*.so")) and not _stale(next(out.glob("ceiling_proto*.so")), src):
        return True, "cython (cached build)"
    for old in out.glob("ceiling_proto*"):
        old.unlink()
    shutil.copy(src, out / "ceiling_proto.py")
    res = subprocess.run(
        [sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-3", "-q", "ceiling_proto.py"],
        cwd=out, capture_output=True, text=True, timeout=300)
    (out / "ceiling_proto.py").unlink()  # the .so or, failing it, bench/apps/ceiling_proto.py
    if res.returncode or not any(out.glob("ceiling_proto*.so")):
        err = (res.stderr or res.stdout).strip().splitlines()[-3:]
        return False, "pure Python fallback (cythonize failed: " + " | ".join(err) + ")"
    return True, "cython"


def _gcc(src, exe) -> None:
    exe.parent.mkdir(parents=True, exist_ok=True)
    if _stale(exe, src):
        res = subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(src), "-lm"],
                             capture_output=True, text=True, timeout=120)
        if res.returncode:
            raise RuntimeError(f"gcc {src.name} failed: {res.stderr.strip()[-400:]}")


def build_loadgen() -> str:
    """gcc -O2 the epoll load generator and the self-check blaster; returns the loadgen path."""
    _gcc(LOADGEN_SRC, LOADGEN)
    _gcc(BLASTER_SRC, BLASTER)
    return str(LOADGEN)


def build_readsend() -> str:
    """gcc -O2 the plain read-and-send download server (bench/download_bound.py); its path."""
    _gcc(READSEND_SRC, READSEND)
    return str(READSEND)
