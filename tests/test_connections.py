"""The connection registry (``app.connections``) from other threads, over real loopback sockets:
it may be read from a producer thread while connections come and go; ``close()`` from another
thread is handed to the loop."""

from __future__ import annotations

import json
import socket
import threading
import time

from _served import read_to_eof, read_until, request, split_response
from conftest import wait_for

from catzilla import Catzilla, StreamingResponse
from catzilla.testing import TestClient


def test_the_registry_can_be_read_from_a_producer_thread_while_connections_come_and_go():
    app = Catzilla()
    errors: list[str] = []
    rounds = [0]
    stop = threading.Event()

    @app.get("/status")
    def status(request):
        def gen():
            while not stop.is_set():
                try:
                    ids = [c.id for c in app.connections]
                    stats = app.connections.stats()
                    n = len(app.connections)
                    known = sum(1 for i in ids if i in app.connections)
                except Exception as exc:   # noqa: BLE001 - what the test looks for
                    errors.append(repr(exc))
                    raise
                rounds[0] += 1
                if rounds[0] % 200 == 0:
                    yield "%d %d %d %d\n" % (len(ids), stats["active"], n, known)
        return StreamingResponse(gen())

    @app.get("/x")
    def x(request):
        return "x"

    with TestClient(app) as client:
        # many idle connections, so the servers' dict is big and takes long to walk
        idle = [socket.create_connection(("127.0.0.1", client.port)) for _ in range(200)]
        watcher = request(client.port, "/status")
        churned = 0
        try:
            read_until(watcher, b"\n")
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline and not errors:
                with socket.create_connection(("127.0.0.1", client.port), timeout=5) as s:
                    s.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    read_to_eof(s)
                churned += 1
        finally:
            stop.set()
            for s in idle:
                s.close()
            watcher.close()
        assert wait_for(lambda: app.connections.stats()["streams_active"] == 0)
    assert not errors, errors[:3]
    assert churned > 10 and rounds[0] > 200


def test_close_from_another_thread_is_handed_to_the_loop():
    app = Catzilla()
    entered = threading.Event()
    release = threading.Event()

    @app.get("/id")
    def conn_id(request):
        return {"id": request.connection_id}

    @app.get("/block")
    def block(request):      # a sync handler: the loop thread waits in it
        entered.set()
        release.wait(10)
        return "released"

    with TestClient(app) as client:
        a = request(client.port, "/id")
        b = None
        try:
            raw = read_until(a, b"}")
            a_id = json.loads(split_response(raw)[1])["id"]
            conn = app.connections[a_id]
            b = request(client.port, "/block")
            assert entered.wait(5)
            conn.close()          # from this thread, while the loop is busy: handed over
            assert not conn.closed
            release.set()
            assert wait_for(lambda: conn.closed)
            assert read_to_eof(a, timeout=5) == b""                 # a's connection closed
            assert a_id not in app.connections
            assert b"released" in read_until(b, b"released")
            conn.close()                                            # closed: nothing to do
        finally:
            release.set()
            a.close()
            if b is not None:
                b.close()
