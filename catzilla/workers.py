"""Serve one app from several processes on one port: ``app.listen(port=8000, workers=4)``.

The parent is a supervisor. It binds the port once with SO_REUSEPORT and never listens on it
(that reserves the port, and makes ``port=0`` work), then forks the workers. Each worker binds
its own SO_REUSEPORT socket to that port and runs the normal single-process server, so the
kernel spreads new connections over the workers. The supervisor

- prints one line with the URL and the worker count once every worker listens;
- restarts a worker that dies, after a back-off (0.1 s, doubling up to 5 s); a worker that dies
  within ``MIN_UPTIME`` seconds of starting ``CRASH_LIMIT`` times in a row is a crash loop:
  the supervisor stops the others and exits with an error saying so;
- on SIGINT or SIGTERM (or ``app.stop()``, called in the supervisor or in a worker) sends
  SIGTERM to every worker (each stops gracefully, as a single process does), waits up to the
  app's ``shutdown_timeout`` plus a margin, SIGKILLs what is left, and returns (exit status 0)
  if every worker stopped by itself. A second signal kills the workers at once. A stop signal
  that comes while a worker starts waits until the worker can stop gracefully.

A worker whose supervisor has gone (killed by SIGKILL or the OOM killer, say) stops by itself
within a second, so that it does not go on serving the port beside a new deployment.

Workers are forked from the supervisor, so they inherit the app as it was configured at
``listen()``; connections to other services should be opened in the workers (the Redis hub
connects on first use in each process). Each worker has its own memory: an in-process
``Broadcast()`` reaches the subscribers of one worker only; ``Broadcast("redis://...")``
reaches those of every worker.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import uvloop

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
WATCH_INTERVAL = 0.5    # how often a worker checks that its supervisor is still there
MIN_UPTIME = 1.0        # a worker that dies sooner than this after starting has crashed
CRASH_LIMIT = 5         # that many such deaths in a row of one worker slot: give up
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
STOP_MARGIN = 3.0       # added to the app's shutdown_timeout when waiting for workers to stop


@dataclass
class _Worker:
    slot: int
    pid: int = 0
    started: float = 0.0
    ready_fd: int = -1          # read end of the pipe the worker writes to once it listens
    ready: bool = False
    crashes: int = 0            # consecutive early deaths
    restart_at: float | None = None
    history: list = field(default_factory=list)


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            return "was killed by %s" % signal.Signals(-code).name
        except ValueError:
            return "was killed by signal %d" % -code
    return "exited with status %d" % code


def _log(message: str) -> None:
    print("catzilla: " + message, file=sys.stderr, flush=True)


class Supervisor:
    def __init__(self, app: Any, host: str, port: int, workers: int, *, backlog: int) -> None:
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError("workers must be a positive int, got %r" % (workers,))
        self.app = app
        self.host = host
        self.port = port
        self.count = workers
        self.backlog = backlog
        self.workers = [_Worker(slot) for slot in range(workers)]
        self.stop_requests = 0           # SIGINT/SIGTERM received
        self.announced = False
        self.failure: str | None = None

    # -- the parent ------------------------------------------------------------------------

    def run(self) -> None:
        from catzilla.app import bind_socket

        reserved = bind_socket(self.host, self.port, reuse_port=True)
        self.port = reserved.getsockname()[1]
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)
        previous = {sig: signal.getsignal(sig) for sig in handled}
        previous_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        for sig in handled:
            signal.signal(sig, self._on_signal)
        self._fds = (wake_r, wake_w, reserved)
        clean = False
        # app.stop(), here or in a worker (which inherits this), stops the whole service
        self.app._supervisor_pid = os.getpid()
        try:
            for w in self.workers:
                self._spawn(w)
            self._supervise(wake_r)
            clean = self._stop_all(wake_r)
        finally:
            for w in self.workers:
                if w.pid:       # only after an exception: kill and reap what is left
                    self._kill(w, signal.SIGKILL)
                    self._reap_blocking(w)
                self._close_ready(w)
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(wake_r)
            os.close(wake_w)
            reserved.close()
            self.app._supervisor_pid = None
        if self.failure is not None:
            raise SystemExit("catzilla: " + self.failure)
        if not clean:
            raise SystemExit("catzilla: some workers did not stop in time and were killed")

    def _on_signal(self, signum: int, frame: Any) -> None:
        # the supervise loop acts on it (the wake-up fd makes its select() return)
        if signum != signal.SIGCHLD:
            self.stop_requests += 1

    def _supervise(self, wake_r: int) -> None:
        while True:
            self._reap()
            if self.failure is not None or self.stop_requests:
                return
            now = time.monotonic()
            timeout = 1.0
            for w in self.workers:
                if w.pid == 0 and w.restart_at is not None:
                    if w.restart_at <= now:
                        self._spawn(w)
                    else:
                        timeout = min(timeout, w.restart_at - now)
            if not self.announced and all(w.ready for w in self.workers):
                self.announced = True
                shown = self.host if ":" not in self.host else "[%s]" % self.host
                print("Catzilla listening on http://%s:%d with %d workers (Ctrl+C to stop)"
                      % (shown, self.port, self.count), flush=True)
            fds = [wake_r] + [w.ready_fd for w in self.workers if w.ready_fd >= 0]
            readable, _, _ = select.select(fds, [], [], max(timeout, 0.0))
            for fd in readable:
                if fd == wake_r:
                    try:
                        while os.read(wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                for w in self.workers:
                    if w.ready_fd == fd:
                        data = os.read(fd, 16)
                        self._close_ready(w)
                        if data:
                            w.ready = True

    def _spawn(self, w: _Worker) -> None:
        ready_r, ready_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        # SIGINT/SIGTERM wait, blocked, until the worker's loop handles them: one that came
        # before (our handler still in the child, or the default one) would be lost or kill
        # it without its graceful stop
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:                                        # the worker
            code = 1
            try:
                os.close(ready_r)
                code = self._worker_main(ready_w, supervisor)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(ready_w)
        w.pid = pid
        w.started = time.monotonic()
        w.ready_fd = ready_r
        w.ready = False
        w.restart_at = None

    def _close_ready(self, w: _Worker) -> None:
        if w.ready_fd >= 0:
            os.close(w.ready_fd)
            w.ready_fd = -1

    def _reap(self) -> None:
        """Collect dead workers and schedule their restarts (or declare a crash loop)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            w = next((w for w in self.workers if w.pid == pid), None)
            if w is None:
                continue                                    # not one of ours
            uptime = time.monotonic() - w.started
            how = _describe(status)
            w.pid = 0
            self._close_ready(w)
            early = uptime < MIN_UPTIME or not w.ready
            w.crashes = w.crashes + 1 if early else 0
            if w.crashes >= CRASH_LIMIT:
                self.failure = (
                    "worker %d keeps crashing: it %s, %d times in a row within %.1f s of "
                    "starting; giving up (see its errors above)"
                    % (w.slot, how, w.crashes, MIN_UPTIME))
                return                  # run() stops the others and exits with this message
            delay = min(BACKOFF_FIRST * 2 ** max(w.crashes - 1, 0), BACKOFF_MAX)
            w.restart_at = time.monotonic() + delay
            _log("worker %d (pid %d) %s; restarting it in %.1f s" % (w.slot, pid, how, delay))

    def _kill(self, w: _Worker, sig: int) -> None:
        try:
            os.kill(w.pid, sig)
        except ProcessLookupError:
            pass

    def _reap_blocking(self, w: _Worker) -> None:
        try:
            os.waitpid(w.pid, 0)
        except ChildProcessError:
            pass
        w.pid = 0

    def _stop_all(self, wake_r: int) -> bool:
        """SIGTERM every worker, wait with a deadline, SIGKILL the rest. True if all stopped
        by themselves with status 0."""
        clean = True
        alive = {w.pid: w for w in self.workers if w.pid}
        requests = self.stop_requests
        for w in alive.values():
            self._kill(w, signal.SIGTERM)
        deadline = time.monotonic() + getattr(self.app, "shutdown_timeout", 5.0) + STOP_MARGIN
        while alive:
            for pid, w in list(alive.items()):
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done, status = pid, 0
                if done:
                    del alive[pid]
                    w.pid = 0
                    if os.waitstatus_to_exitcode(status) != 0:
                        clean = False
                        _log("worker %d (pid %d) %s while stopping" % (w.slot, pid,
                                                                        _describe(status)))
            if not alive:
                break
            urgent = self.stop_requests > max(requests, 1)     # asked twice: stop now
            if urgent or time.monotonic() >= deadline:
                _log("killing %d worker(s) that did not stop%s"
                     % (len(alive), "" if urgent else " in time"))
                for w in alive.values():
                    self._kill(w, signal.SIGKILL)
                for w in alive.values():
                    self._reap_blocking(w)
                return False
            select.select([wake_r], [], [], 0.05)
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        return clean and self.failure is None

    # -- a worker --------------------------------------------------------------------------

    def _worker_main(self, ready_w: int, supervisor: int) -> int:
        wake_r, wake_w, reserved = self._fds
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.close(wake_r)
        os.close(wake_w)
        reserved.close()
        for w in self.workers:                  # the other workers' pipes
            if w.ready_fd >= 0:
                os.close(w.ready_fd)
        run_worker(self.app, self.host, self.port, self.backlog, ready_w, supervisor)
        return 0


def run_worker(app: Any, host: str, port: int, backlog: int, ready_fd: int = -1,
               supervisor: int | None = None) -> None:
    """One worker: the single-process serve path on a SO_REUSEPORT socket, without the
    banner (the supervisor prints it); writes to ``ready_fd`` once it listens. With
    ``supervisor`` (its PID), it stops by itself once that process has gone."""
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(app, host, port, backlog, ready_fd, supervisor))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()


async def _serve(app: Any, host: str, port: int, backlog: int, ready_fd: int,
                 supervisor: int | None = None) -> None:
    loop = asyncio.get_running_loop()
    app._stop = asyncio.Event()
    await app.start(host, port, backlog=backlog, reuse_port=True)
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, app._stop.set)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)   # (see Supervisor._spawn)
    watch = loop.create_task(_watch_supervisor(app, supervisor)) if supervisor else None
    if ready_fd >= 0:
        os.write(ready_fd, b"r")
        os.close(ready_fd)
    try:
        await app._stop.wait()
    finally:
        if watch is not None:
            watch.cancel()
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)   # stopping already; the supervisor SIGKILLs
        await app.shutdown()


async def _watch_supervisor(app: Any, supervisor: int) -> None:
    """Stop this worker once its supervisor has gone (killed, say, by SIGKILL or the OOM
    killer): else it would go on serving the port, beside a new deployment's workers, with
    no one to stop it."""
    while os.getppid() == supervisor:
        await asyncio.sleep(WATCH_INTERVAL)
    _log("catzilla: worker %d: the supervisor (pid %d) has gone; stopping"
         % (os.getpid(), supervisor))
    app._stop.set()


def serve(app: Any, host: str, port: int, workers: int, *, backlog: int = 2048) -> None:
    """Run ``workers`` processes serving ``app`` on ``host:port`` under a supervisor, until
    SIGINT or SIGTERM. Raises SystemExit with a message if the workers crash in a loop."""
    Supervisor(app, host, port, workers, backlog=backlog).run()
