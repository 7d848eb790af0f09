"""Run pytest on a sanitized catzilla: ``tox -e asan`` (see README.md, Development).

    python tests/sanitized_run.py [pytest arguments]

The catzilla imported must be an AddressSanitizer + UBSan build (``CATZILLA_SANITIZE=1 pip
install .``); this script checks that before it runs anything. CPython here is not built with
ASan, so the runtimes are preloaded (LD_PRELOAD) into pytest's process, and through the
environment into every process the tests spawn (servers, workers, examples). Each report is
written to a file of a fresh log folder (ASan's and UBSan's ``log_path``), so a report from a
server process counts even when the test talking to it passes: the run fails when pytest fails
or when any report file exists, and prints the reports.

- ``detect_leaks=0``: CPython keeps much of what it allocates until exit (interned strings,
  type caches, module state) and frees little of it at exit; LeakSanitizer reports all of it.
  Leaked libuv handles are caught by the suite itself (``_core.live_handles()``).
- ``PYTHONMALLOC=malloc``: Python objects are allocated by malloc and so by ASan, which then
  sees an access past a bytes object's or a buffer's end; pymalloc's arenas would hide it.
- UBSan: ``-fno-sanitize-recover=all`` at build time and ``halt_on_error=1``: the first
  report ends the process. UBSan's own message goes to the process's stderr whatever its
  ``log_path`` says (GCC's libubsan and libasan are two runtimes; the report file is libasan's),
  so ``abort_on_error=1`` turns it into a SIGABRT that ASan (``handle_abort=1``) reports to the
  log folder with the stack (``__ubsan_handle_<check>`` above the function at fault). A SIGABRT
  from anything else (a CPython fatal error) is reported there too, and so is a SIGSEGV.
- ``PYTHONSAFEPATH=1`` (Python 3.11+): ``python -c`` and ``python -m``, run from the repository
  by pytest and by the tests' server processes, would otherwise import the repository's own
  catzilla/ (a plain build or none) instead of the sanitized one.

SANITIZER_LOG_DIR sets the log folder (default: a new temporary folder); it is emptied first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNTIMES = ("libasan.so", "libubsan.so")
WHICH_CORE = "import catzilla._core as c; print(c.__file__)"
# a process that dies as one with a UBSan report does (SIGABRT, see above)
ABORTS = "import catzilla._core, os; os.abort()"
MAX_REPORT_CHARS = 20000


def runtime(name: str) -> str:
    cc = os.environ.get("CC", "gcc")
    try:
        path = subprocess.run([cc, "-print-file-name=" + name], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit("sanitized_run: cannot ask %s where %s is: %s" % (cc, name, exc))
    if not os.path.isabs(path) or not os.path.exists(path):
        sys.exit("sanitized_run: %s does not know %s (is the compiler's sanitizer runtime "
                 "installed?)" % (cc, name))
    return path


def sanitizer_env(log_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    preload = [runtime(name) for name in RUNTIMES]
    if env.get("LD_PRELOAD"):
        preload.append(env["LD_PRELOAD"])
    env["LD_PRELOAD"] = ":".join(preload)
    # options given by the caller come last and win, except that the log folder is ours; both
    # runtimes get the same log_path: libubsan's start-up sets libasan's report path (the
    # exported __sanitizer_set_report_path of the first runtime loaded serves both)
    log_path = "log_path=%s" % (log_dir / "report")
    env["ASAN_OPTIONS"] = ":".join(filter(None, (
        "detect_leaks=0:handle_abort=1", env.get("ASAN_OPTIONS"), log_path)))
    env["UBSAN_OPTIONS"] = ":".join(filter(None, (
        "print_stacktrace=1:halt_on_error=1:abort_on_error=1", env.get("UBSAN_OPTIONS"),
        log_path)))
    env["PYTHONMALLOC"] = "malloc"
    env["PYTHONSAFEPATH"] = "1"
    return env


def sanitized_core(env: dict[str, str]) -> Path:
    """The catzilla._core a process started with ``env`` imports; exits unless sanitized."""
    with tempfile.TemporaryDirectory() as elsewhere:
        proc = subprocess.run([sys.executable, "-c", WHICH_CORE], env=env, cwd=elsewhere,
                              capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("sanitized_run: catzilla does not import with the sanitizers preloaded:\n"
                 + proc.stdout + proc.stderr)
    core = Path(proc.stdout.strip().splitlines()[-1])
    if b"__asan_init" not in core.read_bytes():
        sys.exit("sanitized_run: %s is not a sanitized build; install one with "
                 "CATZILLA_SANITIZE=1 pip install ." % core)
    return core


def check_reports_are_collected(env: dict[str, str], log_dir: Path) -> None:
    """A dying child process must leave its report in the log folder, or a clean run means
    nothing."""
    subprocess.run([sys.executable, "-c", ABORTS], env=env, cwd=log_dir, capture_output=True)
    reports = [p for p in log_dir.iterdir() if p.is_file()]
    if not any("ABRT" in p.read_text(errors="replace") for p in reports):
        sys.exit("sanitized_run: a child process's SIGABRT left no report in %s; the sanitizer "
                 "options do not work here" % log_dir)
    for p in reports:
        p.unlink()


def main(args: list[str]) -> int:
    if sys.version_info < (3, 11):
        sys.exit("sanitized_run: needs Python 3.11+ (PYTHONSAFEPATH)")
    if os.environ.get("SANITIZER_LOG_DIR"):
        log_dir = Path(os.environ["SANITIZER_LOG_DIR"]).resolve()
        shutil.rmtree(log_dir, ignore_errors=True)
        log_dir.mkdir(parents=True)
    else:
        log_dir = Path(tempfile.mkdtemp(prefix="catzilla-sanitizer-"))
    env = sanitizer_env(log_dir)
    core = sanitized_core(env)
    check_reports_are_collected(env, log_dir)
    # the processes the tests spawn put the caller's PYTHONPATH before the repository
    site = str(core.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (site, env.get("PYTHONPATH"))))
    print("sanitized_run: %s\nsanitized_run: LD_PRELOAD=%s\nsanitized_run: reports go to %s"
          % (core, env["LD_PRELOAD"], log_dir), flush=True)

    rc = subprocess.call([sys.executable, "-m", "pytest", *args], env=env, cwd=REPO)

    reports = sorted(p for p in log_dir.iterdir() if p.is_file())
    for report in reports:
        text = report.read_text(errors="replace")
        if len(text) > MAX_REPORT_CHARS:
            text = text[:MAX_REPORT_CHARS] + "\n[... %d more characters]\n" % (
                len(text) - MAX_REPORT_CHARS)
        print("\n===== sanitizer report %s =====\n%s" % (report, text), flush=True)
    if reports:
        print("sanitized_run: %d sanitizer report(s) in %s (pytest exited %d)"
              % (len(reports), log_dir, rc))
        return rc or 1
    print("sanitized_run: no sanitizer report (pytest exited %d)" % rc)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
