"""Behaviour the HTTP core got wrong before a review: each test failed on the code before
the fix beside it."""

from __future__ import annotations

from conftest import RawClient

from catzilla import Catzilla, Request, Response
from catzilla.testing import TestClient


def test_a_path_parameter_never_starts_with_a_slash():
    app = Catzilla()

    @app.get("/files/{rest:path}")
    def files(request: Request) -> Response:
        return Response(repr(request.path_params["rest"]))

    @app.get("/one/{name}/x")
    def one(request: Request) -> Response:
        return Response(repr(request.path_params["name"]))

    with TestClient(app) as client:
        assert client.get("/files/a/b.txt").text == "'a/b.txt'"
        for target in ("/files//etc/passwd", "/files///x", "/files//", "/files/\\etc"):
            with RawClient(client.port) as c:
                c.send(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % target.encode())
                resp, body = c.response()
            assert resp.status_code in (400, 404), (target, resp.status_code, body)
        assert client.get("/one/a/x").text == "'a'"
