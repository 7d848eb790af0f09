"""FileResponse (sendfile, Range, validators, HEAD) and safe_join."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate

import pytest
from _served import get
from conftest import RawClient, header

from catzilla import (
    Catzilla,
    FileResponse,
    HTTPException,
    UnsafePathError,
    _core,
    content_disposition,
    safe_join,
)
from catzilla.datastructures import Headers
from catzilla.testing import TestClient

GIB = 1 << 30


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """1 GiB of data whose every MiB differs (a misplaced range would not match)."""
    path = tmp_path_factory.mktemp("files") / "big.bin"
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(GIB >> 20):
            chunk = i.to_bytes(8, "big") + block[8:]
            f.write(chunk)
            digest.update(chunk)
    yield path, digest.hexdigest(), block
    path.unlink()


def file_app(root):
    app = Catzilla()

    @app.get("/files/{name}")
    def serve(request):
        try:
            path = safe_join(root, request.path_params["name"])
        except UnsafePathError:
            raise HTTPException(404) from None
        return FileResponse(path, filename=request.path_params["name"])

    return app


def fetch(client, path, headers=None):
    async def go():
        digest = hashlib.sha256()
        size = 0
        async with client.session.get(client.url(path), headers=headers or {}) as r:
            async for chunk in r.content.iter_chunked(1 << 20):
                digest.update(chunk)
                size += len(chunk)
            return r.status, r.headers, size, digest.hexdigest()

    return client.run(go())


def test_one_gib_download_byte_exact_with_and_without_range(big_file):
    path, whole_sha, block = big_file
    with TestClient(file_app(path.parent)) as client:
        status, headers, size, sha = fetch(client, "/files/big.bin")
        assert status == 200 and size == GIB and sha == whole_sha
        assert headers["Content-Length"] == str(GIB)
        assert headers["Accept-Ranges"] == "bytes"
        assert headers["Content-Disposition"] == 'attachment; filename="big.bin"'

        # a range across a MiB boundary, at an odd offset
        start, end = (700 << 20) - 12345, (900 << 20) + 6789
        status, headers, size, sha = fetch(client, "/files/big.bin",
                                           {"Range": "bytes=%d-%d" % (start, end)})
        assert status == 206 and size == end - start + 1
        assert headers["Content-Range"] == "bytes %d-%d/%d" % (start, end, GIB)
        expected = hashlib.sha256()
        with open(path, "rb") as f:
            f.seek(start)
            left = end - start + 1
            while left:
                data = f.read(min(left, 1 << 22))
                expected.update(data)
                left -= len(data)
        assert sha == expected.hexdigest()

        # the last MiB by suffix range
        status, headers, size, sha = fetch(client, "/files/big.bin", {"Range": "bytes=-1048576"})
        last = (1023).to_bytes(8, "big") + block[8:]
        assert status == 206 and sha == hashlib.sha256(last).hexdigest()


def test_validators_conditional_requests_and_errors(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"0123456789")
    (tmp_path / "sub").mkdir()
    with TestClient(file_app(tmp_path)) as client:
        r = client.get("/files/a.txt")
        assert r.content == b"0123456789"
        assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
        etag, last_modified = r.headers["ETag"], r.headers["Last-Modified"]

        r = client.get("/files/a.txt", headers={"If-None-Match": etag})
        assert r.status == 304 and r.content == b"" and r.headers["ETag"] == etag
        r = client.get("/files/a.txt", headers={"If-None-Match": '"other"'})
        assert r.status == 200
        r = client.get("/files/a.txt", headers={"If-Modified-Since": last_modified})
        assert r.status == 304
        r = client.get("/files/a.txt", headers={"If-Modified-Since": formatdate(0, usegmt=True)})
        assert r.status == 200
        # the two obsolete HTTP-date forms a recipient must also accept (RFC 9110 §5.6.7)
        mtime = (tmp_path / "a.txt").stat().st_mtime
        later = time.gmtime(mtime + 60)
        rfc850 = time.strftime("%A, %d-%b-%y %H:%M:%S GMT", later)
        asctime = time.asctime(later)
        for value in (rfc850, asctime):
            r = client.get("/files/a.txt", headers={"If-Modified-Since": value})
            assert r.status == 304, value
        for value in ("yesterday", "Sun, 31 Feb 2099 08:49:37 GMT", last_modified + " x"):
            r = client.get("/files/a.txt", headers={"If-Modified-Since": value})
            assert r.status == 200 and r.content == b"0123456789", value   # not a date: ignored

        r = client.get("/files/a.txt", headers={"Range": "bytes=2-4"})
        assert r.status == 206 and r.content == b"234"
        r = client.get("/files/a.txt", headers={"Range": "bytes=7-"})
        assert r.status == 206 and r.content == b"789"
        r = client.get("/files/a.txt", headers={"Range": "bytes=50-60"})
        assert r.status == 416 and r.headers["Content-Range"] == "bytes */10"
        r = client.get("/files/a.txt", headers={"Range": "bytes=0-1,4-5"})
        assert r.status == 200 and r.content == b"0123456789"   # several ranges: whole file
        r = client.get("/files/a.txt", headers={"Range": "bytes=2-4", "If-Range": '"stale"'})
        assert r.status == 200 and r.content == b"0123456789"
        r = client.get("/files/a.txt", headers={"Range": "bytes=2-4", "If-Range": etag})
        assert r.status == 206 and r.content == b"234"

        assert client.get("/files/missing.txt").status == 404
        assert client.get("/files/sub").status == 404

        with RawClient(client.port) as c:
            c.send(b"HEAD /files/a.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                   b"GET /files/a.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-0\r\n\r\n")
            resp, body = c.response("HEAD")
            assert body == b"" and header(resp, "content-length") == "10"
            resp, body = c.response()
            assert resp.status_code == 206 and body == b"0"


@pytest.mark.parametrize("name", ["../secret.txt", "..%2Fsecret.txt", "%2E%2E%2Fsecret.txt",
                                  "%2Fetc%2Fpasswd", "a%00b", "..%5Csecret.txt"])
def test_names_escaping_the_root_are_refused(tmp_path, name):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    with TestClient(file_app(root)) as client:
        r = client.get("/files/" + name)
        assert r.status in (400, 404)
        assert b"secret" not in r.content.replace(b"secret.txt", b"")


def test_safe_join_unit(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("x")
    assert safe_join(tmp_path, "d/f.txt") == (tmp_path / "d" / "f.txt").resolve()
    for bad in ["../x", "d/../../x", "/etc/passwd", "a\x00b", "a\\b", "%2e%2e/x", "d%2Ff",
                "", "./x"]:
        with pytest.raises(UnsafePathError):
            safe_join(tmp_path, bad)
    os.symlink("/etc", tmp_path / "link")
    with pytest.raises(UnsafePathError):
        safe_join(tmp_path, "link/passwd")


def test_a_304_repeats_the_caching_headers_a_200_would_carry(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"0123456789")
    app = Catzilla()

    @app.get("/a")
    def a(request):
        return FileResponse(tmp_path / "a.txt", headers={
            "Cache-Control": "max-age=60", "Vary": "Accept-Encoding", "X-Other": "1"})

    with TestClient(app) as client:
        r = client.get("/a")
        assert r.status == 200 and r.headers["Cache-Control"] == "max-age=60"
        r = client.get("/a", headers={"If-None-Match": r.headers["ETag"]})
        assert r.status == 304                        # RFC 9110 15.4.5
        assert r.headers["Cache-Control"] == "max-age=60"
        assert r.headers["Vary"] == "Accept-Encoding"
        assert "X-Other" not in r.headers and r.headers.get("ETag")


# -- one FileResponse object, many requests ---------------------------------------------------

DATA = b"0123456789"


def headers_named(resp, name: str) -> list[str]:
    name_b = name.lower().encode()
    return [v.decode("latin-1") for k, v in resp.headers if k == name_b]


class FakeRequest:
    def __init__(self, **headers: str) -> None:
        self.headers = Headers([(k.replace("_", "-").encode(), v.encode())
                                for k, v in headers.items()])


@pytest.fixture
def icon(tmp_path):
    path = tmp_path / "favicon.ico"
    path.write_bytes(DATA)
    return FileResponse(path, filename="favicon.ico", headers={"X-Static": "1"})


def test_a_reused_file_response_answers_each_request_afresh(icon):
    app = Catzilla()
    app.add_route("/icon", lambda r: icon)
    before_headers = list(icon.raw_headers)
    etag = None
    with TestClient(app) as client, RawClient(client.port) as c:
        for _ in range(3):
            for extra, status, body in (
                (b"", 200, DATA),
                (b"", 200, DATA),
                (b"Range: bytes=0-1\r\n", 206, b"01"),
                (b"", 200, DATA),
                (b"Range: bytes=8-\r\n", 206, b"89"),
                (b"Range: bytes=10-\r\n", 416, None),
                (b"", 200, DATA),
            ):
                resp, got = get(c, "/icon", extra)
                assert resp.status_code == status
                assert len(headers_named(resp, "content-length")) == 1
                if body is not None:
                    assert got == body
                    assert headers_named(resp, "x-static") == ["1"]
                    assert len(headers_named(resp, "etag")) == 1
                    assert len(headers_named(resp, "content-disposition")) == 1
                    assert len(headers_named(resp, "content-range")) == (status == 206)
                    etag = header(resp, "etag")
            resp, got = get(c, "/icon", b"If-None-Match: %s\r\n" % etag.encode())
            assert resp.status_code == 304 and got == b""
            resp, got = get(c, "/icon", b"Range: bytes=2-3\r\n", method="HEAD")
            assert resp.status_code == 206 and header(resp, "content-length") == "2"
    # the object itself is as it was built
    assert icon.status_code == 200
    assert icon.raw_headers == before_headers
    assert icon.file_range is None
    assert list(icon.headers.keys()) == ["X-Static", "Content-Type", "Content-Disposition"]


def _lengths(response):
    return [v for k, v in response.raw_headers if k == b"Content-Length"]


def test_prepare_returns_a_response_for_that_request_alone(icon):
    ranged = icon.prepare(FakeRequest(range="bytes=2-4"))
    plain = icon.prepare(FakeRequest())
    assert ranged is not icon and plain is not icon
    assert (ranged.status_code, ranged.file_range, _lengths(ranged)) == \
        (206, (icon.path, 2, 3), [b"3"])
    assert (plain.status_code, plain.file_range, _lengths(plain)) == \
        (200, (icon.path, 0, 10), [b"10"])
    # the object itself is as it was built
    assert icon.status_code == 200 and icon.file_range is None and _lengths(icon) == []


def test_a_shared_file_response_served_by_two_servers_at_once(icon):
    """Two apps (two loop threads) serve the same object to concurrent clients."""
    apps = [Catzilla(), Catzilla()]
    for app in apps:
        app.add_route("/icon", lambda r: icon)
    cases = [(b"", 200, DATA), (b"Range: bytes=3-5\r\n", 206, b"345"),
             (b"Range: bytes=-1\r\n", 206, b"9"), (b"Range: bytes=50-\r\n", 416, None)]

    def hammer(port, offset):
        out = []
        with RawClient(port) as c:
            for i in range(150):
                extra, status, body = cases[(i + offset) % len(cases)]
                resp, got = get(c, "/icon", extra)
                out.append(resp.status_code == status and (body is None or got == body)
                           and len(headers_named(resp, "content-length")) == 1)
        return out

    with TestClient(apps[0]) as c1, TestClient(apps[1]) as c2:
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(hammer, port, k)
                       for k, port in enumerate([c1.port, c2.port] * 3)]
            results = [f.result(60) for f in futures]
    assert all(all(r) for r in results)


def test_headers_and_cookies_set_on_the_object_go_to_every_later_request(icon):
    icon.headers["Cache-Control"] = "max-age=60"
    icon.set_cookie("a", "1")
    for request in (FakeRequest(range="bytes=0-0"), FakeRequest()):
        names = [k for k, _ in icon.prepare(request).raw_headers]
        assert b"Cache-Control" in names and b"Set-Cookie" in names
        assert names.count(b"Content-Length") == 1


# -- Range requests ---------------------------------------------------------------------------

@pytest.mark.parametrize("spec,status,body,content_range", [
    ("bytes=10-", 416, None, "bytes */10"),
    ("bytes=11-", 416, None, "bytes */10"),
    ("bytes=20-30", 416, None, "bytes */10"),
    ("bytes=9-", 206, b"9", "bytes 9-9/10"),
    ("bytes=0-", 206, DATA, "bytes 0-9/10"),
    ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),
    ("bytes=-3", 206, b"789", "bytes 7-9/10"),
    ("bytes=-0", 416, None, "bytes */10"),
    ("bytes=5-2", 200, DATA, None),            # an invalid range-spec: ignored
    ("bytes=20-10", 200, DATA, None),
    ("bytes=0-1,3-4", 200, DATA, None),        # several ranges: the whole file
    ("items=0-1", 200, DATA, None),
])
def test_range_requests(icon, spec, status, body, content_range):
    app = Catzilla()
    app.add_route("/icon", lambda r: icon)
    with TestClient(app) as client, RawClient(client.port) as c:
        resp, got = get(c, "/icon", b"Range: %s\r\n" % spec.encode())
    assert resp.status_code == status
    assert header(resp, "content-range") == content_range
    if body is not None:
        assert got == body


def test_any_range_of_an_empty_file_is_unsatisfiable(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    response = FileResponse(tmp_path / "empty")
    for spec in ("bytes=0-", "bytes=0-0", "bytes=-1"):
        out = response.prepare(FakeRequest(range=spec))
        assert out.status_code == 416
        assert (b"Content-Range", b"bytes */0") in out.raw_headers


# -- Content-Disposition ----------------------------------------------------------------------

@pytest.mark.parametrize("name,expected", [
    ("plain.txt", 'attachment; filename="plain.txt"'),
    ("a b;c/d.txt", 'attachment; filename="a b;c/d.txt"'),
    ("a\\b.txt", "attachment; filename=\"a\\\\b.txt\"; filename*=utf-8''a%5Cb.txt"),
    ('say "hi".txt', "attachment; filename=\"say \\\"hi\\\".txt\"; filename*=utf-8''"
                     "say%20%22hi%22.txt"),
    ("café/ü.txt", "attachment; filename=\"caf?/?.txt\"; filename*=utf-8''"
                   "caf%C3%A9%2F%C3%BC.txt"),
    ("x\r\ny\x7f.txt", "attachment; filename=\"x__y_.txt\"; filename*=utf-8''x%0D%0Ay%7F.txt"),
    ("a!#$&+-.^_`|~z", 'attachment; filename="a!#$&+-.^_`|~z"'),
    ("é!#$&+^`|~", "attachment; filename=\"?!#$&+^`|~\"; filename*=utf-8''%C3%A9!#$&+^`|~"),
])
def test_content_disposition_quoting(tmp_path, name, expected):
    response = FileResponse(tmp_path / "f", filename=name)
    value = response.headers["Content-Disposition"]
    assert value == expected
    _core.serialise_head(200, response.raw_headers, 0)     # a valid header on the wire
    assert content_disposition(name) == expected           # the same for any response
