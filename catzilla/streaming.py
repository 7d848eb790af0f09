"""Worker threads for sync stream producers.

The guide's generators call ``time.sleep`` and block in ``queue.get(timeout=...)``; each runs on
a thread of its own so the event loop never waits for one. Threads are reused while work keeps
coming, end after ``idle_timeout`` seconds without work, and are capped: when all
``max_threads`` are busy, ``try_submit`` refuses (the server answers 503).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

logger = logging.getLogger("catzilla")


class StreamThreadPool:
    def __init__(self, max_threads: int = 1000, idle_timeout: float = 5.0) -> None:
        if max_threads < 1:
            raise ValueError("max_stream_threads must be at least 1")
        self.max_threads = max_threads
        self.idle_timeout = idle_timeout
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._closed = False

    @property
    def busy(self) -> int:
        """Threads running a producer now."""
        with self._lock:
            return len(self._threads) - self._idle

    @property
    def size(self) -> int:
        with self._lock:
            return len(self._threads)

    def try_submit(self, job: Callable[[], None]) -> bool:
        with self._lock:
            if self._closed:
                return False
            if self._idle > 0:
                self._idle -= 1
                self._jobs.put(job)
                return True
            if len(self._threads) >= self.max_threads:
                return False
            thread = threading.Thread(
                target=self._work, args=(job,), name="catzilla-stream", daemon=True
            )
            self._threads.add(thread)
        thread.start()
        return True

    def _work(self, job: Callable[[], None] | None) -> None:
        me = threading.current_thread()
        while job is not None:
            try:
                job()
            except BaseException:  # a job reports its own errors; this is a last resort
                logger.exception("catzilla: stream worker failed")
            job = None
            with self._lock:
                if self._closed:
                    break
                self._idle += 1
            try:
                job = self._jobs.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    try:
                        job = self._jobs.get_nowait()  # a submit raced with our time-out
                    except queue.Empty:
                        self._idle -= 1
                        break
        with self._lock:
            self._threads.discard(me)

    def close(self) -> None:
        """Refuse new work and tell idle threads to end (busy ones end after their job)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for _ in self._threads:
                    self._jobs.put(None)

    def alive(self) -> bool:
        """Whether any of its threads is still running."""
        with self._lock:
            threads = list(self._threads)
        return any(t.is_alive() for t in threads)
