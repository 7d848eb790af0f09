"""The application object: routes, error policy, and running the server."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import uvloop

from catzilla import _checks, _core
from catzilla._router import Router
from catzilla.exceptions import HTTPException
from catzilla.hub import Broadcast
from catzilla.responses import JSONResponse, PlainTextResponse, Response

logger = logging.getLogger("catzilla")

# how long shutdown waits at least for producers close_all() has just stopped (past the
# deadline: a producer told to stop at the deadline ends after its current item)
_STOP_GRACE = 0.1

Handler = Callable[..., Any]


class Catzilla:
    """A catzilla application.

    >>> app = Catzilla()
    >>> @app.get("/hello/{name}")
    ... def hello(request):
    ...     return {"hello": request.path_params["name"]}
    >>> app.listen(port=8000)
    """

    def __init__(
        self,
        *,
        debug: bool = False,
        max_header_size: int = 32 * 1024,
        max_url_size: int = 8 * 1024,
        max_headers: int = 100,
        max_body_size: int = 16 * 1024 * 1024,
        keep_alive_timeout: float = 5.0,
        request_timeout: float = 30.0,
        min_body_rate: float = 1024.0,
        send_timeout: float = 60.0,
        lingering_timeout: float = 2.0,
        lingering_time: float = 5.0,
        write_high_water: int = 256 * 1024,
        write_low_water: int = 64 * 1024,
        shutdown_timeout: float = 5.0,
        server_header: str | None = "catzilla",
        max_stream_threads: int = 1000,
        stream_thread_idle_timeout: float = 5.0,
    ) -> None:
        for name, value in (("max_header_size", max_header_size), ("max_url_size", max_url_size),
                            ("max_headers", max_headers), ("max_body_size", max_body_size),
                            ("write_high_water", write_high_water),
                            ("max_stream_threads", max_stream_threads)):
            _checks.count(name, value)
        _checks.count("write_low_water", write_low_water, minimum=0)
        if write_low_water > write_high_water:
            raise ValueError(f"write_low_water ({write_low_water}) must not be above "
                             f"write_high_water ({write_high_water})")
        for name, value in (("keep_alive_timeout", keep_alive_timeout),
                            ("request_timeout", request_timeout),
                            ("lingering_timeout", lingering_timeout),
                            ("lingering_time", lingering_time),
                            ("stream_thread_idle_timeout", stream_thread_idle_timeout)):
            _checks.seconds(name, value)
        _checks.seconds("send_timeout", send_timeout, zero="no limit")
        _checks.seconds("shutdown_timeout", shutdown_timeout, zero="close at once")
        _checks.rate("min_body_rate", min_body_rate)
        _checks.header_value("server_header", server_header)
        self.debug = debug
        self.router = Router()
        self.limits = dict(
            max_header_size=max_header_size,
            max_url_size=max_url_size,
            max_headers=max_headers,
            max_body_size=max_body_size,
            keep_alive_timeout=keep_alive_timeout,
            request_timeout=request_timeout,
            min_body_rate=min_body_rate,
            send_timeout=send_timeout,
            lingering_timeout=lingering_timeout,
            lingering_time=lingering_time,
            write_high_water=write_high_water,
            write_low_water=write_low_water,
            server_header=server_header,
            max_stream_threads=max_stream_threads,
            stream_thread_idle_timeout=stream_thread_idle_timeout,
        )
        self.shutdown_timeout = shutdown_timeout
        self._methods: set[str] = set()
        self._servers: list[_core.Server] = []
        self._stop: asyncio.Event | None = None
        self._force_stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor_pid: int | None = None   # set while listen(workers=N) runs
        self.connections = ConnectionRegistry(self)
        self._broadcast: Broadcast | None = None

    @property
    def broadcast(self) -> Broadcast:
        """The app's in-process broadcast hub (created on first use)."""
        if self._broadcast is None:
            self._broadcast = Broadcast()
        return self._broadcast

    # -- routes ----------------------------------------------------------------------------

    def route(
        self, path: str, methods: Iterable[str] = ("GET",), *, name: str | None = None
    ) -> Callable[[Handler], Handler]:
        methods = [m.upper() for m in methods]

        def decorator(handler: Handler) -> Handler:
            self.add_route(path, handler, methods, name=name)
            return handler

        return decorator

    def add_route(
        self, path: str, handler: Handler, methods: Iterable[str] = ("GET",), *,
        name: str | None = None,
    ) -> None:
        if not callable(handler):
            raise TypeError("a route handler must be callable, got %r" % (handler,))
        methods = [m.upper() for m in methods]
        self.router.add(path, handler, methods, name or getattr(handler, "__name__", None))
        self._methods.update(methods)
        for server in self._servers:   # added while serving: its methods are known at once
            server.app_methods = server.app_methods | frozenset(methods)

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["GET"], **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["POST"], **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["PUT"], **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["PATCH"], **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["DELETE"], **kw)

    def head(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["HEAD"], **kw)

    def options(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["OPTIONS"], **kw)

    def url_path_for(self, name: str, **params: Any) -> str:
        return self.router.url_path_for(name, **params)

    # -- errors ----------------------------------------------------------------------------

    def _error_response(self, request: Any, exc: BaseException) -> Response:
        """The response for an exception a handler raised (called by the core)."""
        if isinstance(exc, HTTPException):
            return JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
        logger.error(
            "Exception in handler for %s %s", request.method, request.path,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        if self.debug:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            return PlainTextResponse(text, status_code=500)
        return JSONResponse({"detail": "Internal Server Error"}, status_code=500)

    # -- serving ---------------------------------------------------------------------------

    def _make_server(self, loop: asyncio.AbstractEventLoop) -> _core.Server:
        server = _core.Server(
            loop, self, self.router, self._error_response, debug=self.debug, **self.limits
        )
        server.app_methods = frozenset(self._methods) | server.app_methods
        return server

    async def start(
        self, host: str = "127.0.0.1", port: int = 8000, *, sock: socket.socket | None = None,
        backlog: int = 2048, reuse_port: bool = False,
    ) -> _core.Server:
        """Start serving on the running uvloop loop; returns the server (see ``stop``)."""
        loop = asyncio.get_running_loop()
        if sock is None:
            sock = bind_socket(host, port, reuse_port=reuse_port)
        server = self._make_server(loop)
        server.listen(sock, backlog)
        self._servers.append(server)
        self._loop = loop
        return server

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting; let in-flight responses finish within ``timeout`` seconds, every
        download included (file, Content-Length, chunked), queued bytes and all; close hub,
        SSE and ``stop_on_shutdown`` streams at once (their producers' ``finally:`` runs);
        then close every connection (one whose response is unfinished with a reset), and wait
        (within the same deadline) for stream producers to finish their clean-up."""
        timeout = self.shutdown_timeout if timeout is None else timeout
        servers, self._servers = self._servers, []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        force = self._force_stop = self._force_stop or asyncio.Event()
        waiters = [s.begin_shutdown() for s in servers]
        if waiters:
            forced = asyncio.ensure_future(force.wait())
            await asyncio.wait([asyncio.gather(*waiters), forced], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            forced.cancel()
        await asyncio.gather(*(s.close_all() for s in servers))
        # Producers were told to stop: a thread ends after its current item, an async
        # producer's task once its finally: is done. Wait for them without blocking the loop,
        # until the deadline (but a moment at least for those close_all() just stopped); a
        # second Ctrl+C stops waiting.
        for s in servers:
            s.stream_pool.close()
        until = max(deadline, loop.time() + _STOP_GRACE)

        def tasks() -> list[asyncio.Task]:
            return [t for s in servers for t in s.pending_producer_tasks()]

        while ((tasks() or any(s.stream_pool.alive() for s in servers))
               and loop.time() < until and not force.is_set()):
            await asyncio.sleep(0.02)
        if any(s.stream_pool.alive() for s in servers):
            logger.warning("catzilla: some stream producers did not stop within %.1f s "
                           "(they are blocked in user code)", timeout)
        late = tasks()
        if late:
            # Cancel their clean-up too (a second cancel interrupts the await it is in), so
            # their generators are closed before the loop is; what is still running then is
            # left behind.
            logger.warning("catzilla: %d async stream producer(s) did not finish their "
                           "clean-up within %.1f s; cancelling it", len(late), timeout)
            for t in late:
                t.cancel()
            await asyncio.wait(late, timeout=_STOP_GRACE)

    def stop(self) -> None:
        """Ask a running ``listen()`` to shut down gracefully (thread-safe): it stops
        accepting, lets responses in flight finish within ``shutdown_timeout`` (downloads
        included), closes hub, SSE and ``stop_on_shutdown`` streams at once (their producers'
        ``finally:`` runs), then closes every connection."""
        if self._supervisor_pid is not None and self._supervisor_pid in (os.getpid(),
                                                                           os.getppid()):
            # with workers=N, the supervisor (this process or a worker's parent) stops them all
            os.kill(self._supervisor_pid, signal.SIGTERM)
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    @property
    def servers(self) -> list[_core.Server]:
        return list(self._servers)

    def listen(
        self, port: int = 8000, host: str = "0.0.0.0", *, backlog: int = 2048,
        reuse_port: bool = True, workers: int | None = None,
    ) -> None:
        """Serve until SIGINT or SIGTERM (or ``app.stop()``), then shut down gracefully.
        ``workers=N`` serves from N processes on one port under a supervisor that restarts
        them (see ``catzilla.workers``)."""
        if workers is not None:
            from catzilla.workers import serve

            serve(self, host, port, workers, backlog=backlog)
            return
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(host, port, backlog, reuse_port))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()

    async def _serve(self, host: str, port: int, backlog: int, reuse_port: bool) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._force_stop = asyncio.Event()
        server = await self.start(host, port, backlog=backlog, reuse_port=reuse_port)

        def on_signal() -> None:
            # the first signal stops gracefully; a second one stops waiting for stragglers
            (self._force_stop if self._stop.is_set() else self._stop).set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        shown = host if ":" not in host else "[%s]" % host
        print("Catzilla listening on http://%s:%d (Ctrl+C to stop)" % (shown, server.sockname[1]),
              flush=True)
        try:
            await self._stop.wait()
            await self.shutdown()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


class ConnectionRegistry:
    """The live connections of an app (``app.connections``), across its servers.

    >>> len(app.connections), app.connections.stats()
    >>> for conn in app.connections:
    ...     print(conn.id, conn.client, conn.path, conn.bytes_sent, conn.stream_kind)
    >>> app.connections[conn_id].close()
    """

    def __init__(self, app: Catzilla) -> None:
        self._app = app

    # Any thread may use it (a sync producer runs on a worker thread) while the loop thread
    # adds and removes connections: the servers' dicts are only read through C-level
    # snapshots, never iterated from Python code.

    def _all(self) -> list[Any]:
        return [c for s in list(self._app._servers) for c in s.connection_list()]

    def __len__(self) -> int:
        return sum(len(s.connections) for s in list(self._app._servers))

    def __iter__(self):
        return iter(self._all())

    def __contains__(self, conn_id: object) -> bool:
        return self.get(conn_id) is not None  # type: ignore[arg-type]

    def get(self, conn_id: int, default: Any = None) -> Any:
        for s in list(self._app._servers):
            conn = s.connections.get(conn_id)
            if conn is not None:
                return conn
        return default

    def __getitem__(self, conn_id: int) -> Any:
        conn = self.get(conn_id)
        if conn is None:
            raise KeyError(conn_id)
        return conn

    def stats(self) -> dict[str, int]:
        """Counters: total_accepted, active, streams_active, total_streams, total_requests,
        bytes_sent."""
        totals: dict[str, int] = {}
        for s in list(self._app._servers):
            for key, value in s.stats().items():
                totals[key] = totals.get(key, 0) + value
        return totals or dict.fromkeys(
            ("total_accepted", "active", "streams_active", "total_streams", "total_requests",
             "bytes_sent"), 0)


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening-ready TCP socket bound to host:port (IPv4 or IPv6)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
