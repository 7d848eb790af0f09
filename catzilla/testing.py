"""A test client that serves an app on a free loopback port and talks to it with aiohttp.

>>> from catzilla.testing import TestClient
>>> with TestClient(app) as client:
...     r = client.get("/hello/world")
...     assert r.status == 200 and r.json() == {"hello": "world"}

The app runs on its own uvloop loop in a background thread, exactly as ``app.listen()`` runs it;
the client uses a separate asyncio loop in the calling thread. ``client.run(coro)`` runs any
coroutine on the client loop, with ``client.session`` (an ``aiohttp.ClientSession``) for
streaming or concurrent requests.
"""

from __future__ import annotations

import asyncio
import json as _json
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
import uvloop

from catzilla.app import Catzilla

T = TypeVar("T")


class TestResponse:
    """What the client received: ``status``, ``headers``, ``content`` (bytes), ``text``,
    ``json()``."""

    __test__ = False  # not a pytest class

    def __init__(self, status: int, reason: str, headers: Any, content: bytes, version: Any):
        self.status = status
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.content = content
        self.version = version

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.content)

    def __repr__(self) -> str:
        return "<TestResponse %d %r>" % (self.status, self.content[:60])


class TestClient:
    __test__ = False

    def __init__(self, app: Catzilla, *, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        self.app = app
        self.host = host
        self.timeout = timeout
        self.port: int | None = None
        self.server: Any = None
        self.session: aiohttp.ClientSession | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server_loop: asyncio.AbstractEventLoop | None = None
        self._server_stop: asyncio.Event | None = None
        self._server_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        host = self.host if ":" not in self.host else "[%s]" % self.host
        return "http://%s:%d" % (host, self.port)

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> TestClient:
        self._thread = threading.Thread(target=self._serve, name="catzilla-test-server")
        self._thread.start()
        if not self._ready.wait(self.timeout):
            raise RuntimeError("the test server did not start within %s s" % self.timeout)
        if self._server_error is not None:
            self._thread.join()
            raise RuntimeError("the test server failed to start") from self._server_error
        self._loop = asyncio.new_event_loop()
        self.session = self._loop.run_until_complete(self._open_session())
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._loop is not None:
            if self.session is not None:
                self._loop.run_until_complete(self.session.close())
                self.session = None
            self._loop.close()
            self._loop = None
        if self._thread is not None:
            if self._server_loop is not None and self._server_stop is not None:
                self._server_loop.call_soon_threadsafe(self._server_stop.set)
            self._thread.join(self.timeout)
            if self._thread.is_alive():
                raise RuntimeError("the test server did not stop within %s s: %r"
                                   % (self.timeout, self.server.debug_state()))
            self._thread = None
        if self._server_error is not None:
            raise RuntimeError("the test server failed") from self._server_error

    async def _open_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=0),  # tests open hundreds of streams
        )

    def _serve(self) -> None:
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._server_main())
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as exc:  # reported to the test thread
            self._server_error = exc
        finally:
            self._ready.set()
            asyncio.set_event_loop(None)
            loop.close()

    async def _server_main(self) -> None:
        self._server_loop = asyncio.get_running_loop()
        self._server_stop = asyncio.Event()
        self.server = await self.app.start(self.host, 0)
        self.port = self.server.sockname[1]
        self._ready.set()
        await self._server_stop.wait()
        await self.app.shutdown()

    # -- requests --------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the client's loop (use ``self.session`` inside it)."""
        assert self._loop is not None, "use TestClient as a context manager"
        return self._loop.run_until_complete(coro)

    def call_in_server(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the server's loop thread and return its result."""
        assert self._server_loop is not None
        fut = asyncio.run_coroutine_threadsafe(_call(fn, args), self._server_loop)
        return fut.result(self.timeout)

    async def arequest(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        assert self.session is not None
        async with self.session.request(method, self.url(path), **kwargs) as r:
            content = await r.read()
            return TestResponse(r.status, r.reason or "", r.headers, content, r.version)

    def request(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        return self.run(self.arequest(method, path, **kwargs))

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> TestResponse:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> TestResponse:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> TestResponse:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> TestResponse:
        return self.request("DELETE", path, **kw)

    def head(self, path: str, **kw: Any) -> TestResponse:
        return self.request("HEAD", path, **kw)

    def options(self, path: str, **kw: Any) -> TestResponse:
        return self.request("OPTIONS", path, **kw)


async def _call(fn: Any, args: tuple) -> Any:
    return fn(*args)
