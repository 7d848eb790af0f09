"""FileResponse (sendfile, Range, validators, HEAD) and safe_join."""

from __future__ import annotations

import hashlib
import os
import time
from email.utils import formatdate

import pytest
from conftest import RawClient, header

from catzilla import Catzilla, FileResponse, HTTPException, UnsafePathError, safe_join
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
