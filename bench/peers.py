"""The peers: which frameworks we measure, how each is installed, and how it is launched.

Every peer except ours and the ceilings lives in its own virtual environment under
bench/.cache/venvs/<name>, created once with pinned versions and reused while the pins match.

Ours and the ceilings run from a virtual environment too, bench/.cache/venvs/local: it installs
nothing, and a .pth file puts the current interpreter's site-packages on its path, so it imports
the very packages the current interpreter has. What it leaves out is that interpreter's start-up
customisation: a .pth file there that imports modules at start (this machine has one importing
certifi, pathlib, zipfile, tempfile and more) would otherwise count in our resident size and not
in a peer's.
"""

from __future__ import annotations

import compileall
import dataclasses
import hashlib
import site
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CACHE = BENCH / ".cache"
RESULTS = BENCH / "results"
APPS = BENCH / "apps"
VENVS = CACHE / "venvs"

UVICORN = ("uvicorn==0.54.0", "uvloop==0.23.0", "httptools==0.9.0")


@dataclasses.dataclass(frozen=True)
class Peer:
    name: str  # command-line key
    label: str  # shown in tables
    app: str  # file in bench/apps
    packages: tuple[str, ...] = ()  # pinned requirements; () = the current interpreter
    note: str = ""

    @property
    def venv(self) -> Path:
        return VENVS / self.name if self.packages else LOCAL

    @property
    def python(self) -> str:
        if not self.packages:
            ensure_local()
        return str(self.venv / "bin" / "python")


PEERS = [
    Peer("catzilla", "catzilla (ours)", "catzilla_app.py",
         note="working tree, current interpreter's packages, clean start-up"),
    Peer("ceiling", "ceiling (fixed bytes)", "ceiling_app.py",
         note="Cython asyncio.Protocol on uvloop, no parsing"),
    Peer("uvicorn", "uvicorn+starlette", "uvicorn_app.py",
         UVICORN + ("starlette==1.10.0", "sse-starlette==3.7.0")),
    Peer("fastapi", "FastAPI on uvicorn", "fastapi_app.py", UVICORN + ("fastapi==0.165.0",)),
    Peer("granian", "granian+starlette", "granian_app.py",
         ("granian==2.8.7", "starlette==1.10.0", "uvloop==0.23.0"), note="ASGI, 1 worker"),
    Peer("aiohttp", "aiohttp", "aiohttp_app.py", ("aiohttp==3.14.5", "uvloop==0.23.0"),
         note="uvloop event loop"),
    Peer("sanic", "sanic", "sanic_app.py", ("sanic==25.12.1",), note="single_process"),
    Peer("socketify", "socketify", "socketify_app.py", ("socketify==0.0.31",)),
    Peer("catzilla023", "Catzilla 0.2.3 (PyPI)", "catzilla023_app.py", ("catzilla==0.2.3",)),
]
BY_NAME = {p.name: p for p in PEERS}
# Not a framework: the loopback ceiling for large downloads (plain socket.sendfile).
SENDFILE = Peer("sendfile", "plain sendfile (no framework)", "sendfile_app.py")


class PeerError(Exception):
    pass


LOCAL = VENVS / "local"


def ensure_local() -> None:
    """The venv of ours and the ceilings: no packages, the current interpreter's on its path."""
    paths = "\n".join([*site.getsitepackages(), site.getusersitepackages()]) + "\n"
    pth = LOCAL / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / \
        "site-packages" / "bench-current-interpreter.pth"
    python = LOCAL / "bin" / "python"
    if python.exists() and pth.exists() and pth.read_text() == paths:
        return
    LOCAL.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", "--without-pip", str(LOCAL)],
                   check=True, timeout=300)
    pth.write_text(paths)


def compile_sources() -> None:
    """Byte-compile the bench apps and the working tree's catzilla, as pip does for what it
    installs: with no .pyc (or PYTHONDONTWRITEBYTECODE set) every start compiles the sources
    again, which costs time and leaves the parser's memory in the server's resident size."""
    for tree in (APPS, REPO / "catzilla"):
        compileall.compile_dir(str(tree), maxlevels=0, quiet=1)


def ensure_installed(peer: Peer, log=print) -> None:
    """Create the peer's venv and pip-install its pins once; reuse it while the pins match."""
    compile_sources()
    if not peer.packages:
        ensure_local()
        return
    stamp = peer.venv / ".bench-installed"
    want = hashlib.sha256("\n".join(peer.packages).encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    log(f"  installing {peer.name}: {' '.join(peer.packages)} (one-off)")
    peer.venv.parent.mkdir(parents=True, exist_ok=True)
    logfile = CACHE / f"install-{peer.name}.log"
    with open(logfile, "w") as out:
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(peer.venv)],
            [peer.python, "-m", "pip", "install", "--disable-pip-version-check", "-q",
             *peer.packages],
        ]
        for cmd in steps:
            if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=900).returncode:
                tail = logfile.read_text().strip().splitlines()[-6:]
                raise PeerError(f"install failed ({' '.join(cmd[2:5])}): " + " | ".join(tail))
    stamp.write_text(want)


def installed_versions(peer: Peer, names=None) -> dict[str, str]:
    """Versions actually importable by the peer's interpreter (recorded in the results)."""
    names = names or [p.split("==")[0] for p in peer.packages] or ["catzilla", "uvloop", "Cython"]
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        f"for n in {names!r}:\n"
        "    try: out[n] = m.version(n)\n"
        "    except Exception: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    import json

    try:
        res = subprocess.run([peer.python, "-c", code], capture_output=True, text=True, timeout=60)
        return json.loads(res.stdout)
    except Exception as exc:  # noqa: BLE001
        return {"error": str(exc)}


def rotated(seq: list, turn: int) -> list:
    """seq starting at position turn (mod its length): on run r, peers take turns in a rotated
    order, so no peer always follows the same one (Connection: close runs leave TIME_WAIT
    sockets behind that the next server's client meets)."""
    k = turn % len(seq) if seq else 0
    return seq[k:] + seq[:k]
