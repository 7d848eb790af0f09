"""Every example of the streaming guide (examples/guide_*.py), run as its own process on a free
loopback port and checked over real sockets: what it streams, when it streams it, and that it
stops cleanly on SIGINT (code 0, no traceback)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
from _example_runner import (
    Event,
    chat_event,
    client_session,
    decode_chunked,
    json_type,
    raw_request,
    read_event,
    read_event_until,
    read_line,
    read_lines_to_eof,
    running,
    within,
)


def run(coro_fn, *args):
    return asyncio.run(coro_fn(*args))


def single_header(resp, name: str) -> str:
    """The one value of header ``name``; fails if it is missing or repeated."""
    key = name.lower().encode()
    values = [v.decode("latin-1") for k, v in resp.raw_headers if k.lower() == key]
    assert len(values) == 1, "expected one %s header, got %r" % (name, values)
    return values[0]


def at_most_one(resp, name: str) -> None:
    values = [v for k, v in resp.raw_headers if k.lower() == name.lower().encode()]
    assert len(values) <= 1, "%s header repeated: %r" % (name, values)


# -- Basic Server-Sent Events ----------------------------------------------------------------

def test_basic_sse(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with client_session() as session:
            async with session.get(url + "/") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("application/json")
                assert await r.json() == {"message": "Hello with streaming!"}

            t_request = time.monotonic()
            async with session.get(url + "/events") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/event-stream")
                assert "Content-Length" not in resp.headers
                e0 = await read_event(resp, 5, "event 0")
                assert e0.id == "0"
                assert e0.data.startswith("{'count': 0, 'timestamp': "), e0.lines
                # The whole stream takes 20 x 0.5 s: a buffered body could not start this early.
                assert e0.at - t_request < 3.0

                # While the generator sleeps in its worker thread the server answers others.
                for _ in range(3):
                    t0 = time.monotonic()
                    async with session.get(url + "/") as r:
                        assert r.status == 200
                        await r.read()
                    assert time.monotonic() - t0 < 0.3, "GET / waited on a sleeping stream"

                e1 = await read_event(resp, 5, "event 1")
                assert e1.id == "1"
                assert e1.data.startswith("{'count': 1, 'timestamp': "), e1.lines
                assert e1.at - e0.at >= 0.4, "events 0 and 1 arrived together: buffered"
                e2 = await read_event(resp, 5, "event 2")
                assert e2.id == "2" and e2.at - e1.at >= 0.4

    with running("basic_sse", tmp_path) as ex:
        run(check, ex.url)


# -- Real-Time Data Streaming ----------------------------------------------------------------

def test_realtime(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with client_session() as session:
            async with session.get(url + "/stream/realtime") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                assert single_header(resp, "Cache-Control") == "no-cache"
                at_most_one(resp, "Connection")
                first = await read_line(resp, 5, "the first JSON line")
                second = await read_line(resp, 5, "the second JSON line")
                a, b = first.json(), second.json()
                assert (a["count"], a["value"], a["status"]) == (1, 1.5, "active")
                assert (b["count"], b["value"], b["status"]) == (2, 3.0, "active")
                assert a["timestamp"] < b["timestamp"]
                assert second.at - first.at >= 0.8, "lines a second apart arrived together"
                # disconnect after two lines (the whole stream takes ~10 s)

    with running("realtime", tmp_path) as ex:
        run(check, ex.url)


# -- Chunked File Streaming ------------------------------------------------------------------

def test_file_download(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    payload = os.urandom(200_003)  # many 8 KiB chunks and a short last one
    (uploads / "sample.bin").write_bytes(payload)
    (uploads / "empty.txt").write_bytes(b"")
    for name in ("日本.txt", 'q"uote;x.txt'):
        (uploads / name).write_bytes(name.encode())
    (uploads / "sub").mkdir()
    token = "TOP-SECRET-%s" % os.urandom(8).hex()
    secret = tmp_path / "secret.txt"
    secret.write_text(token)

    async def check(url: str, port: int) -> None:
        async with client_session() as session:
            async with session.get(url + "/download/sample.bin") as r:
                assert r.status == 200
                body = await r.read()
                assert body == payload
                assert single_header(r, "Content-Length") == str(len(payload))
                disposition = single_header(r, "Content-Disposition")
                assert disposition == 'attachment; filename="sample.bin"'
                assert r.headers["Content-Type"] == "application/octet-stream"
                assert "Transfer-Encoding" not in r.headers

            async with session.get(url + "/download/empty.txt") as r:
                assert r.status == 200
                assert await r.read() == b""
                assert single_header(r, "Content-Length") == "0"

            for name, disposition in [
                ("日本.txt", "attachment; filename=\"??.txt\"; "
                            "filename*=utf-8''%E6%97%A5%E6%9C%AC.txt"),
                ('q"uote;x.txt', "attachment; filename=\"q\\\"uote;x.txt\"; "
                                 "filename*=utf-8''q%22uote%3Bx.txt"),
            ]:
                async with session.get(url + "/download/" + quote(name)) as r:
                    assert r.status == 200
                    assert await r.read() == name.encode()
                    assert single_header(r, "Content-Disposition") == disposition

            async with session.get(url + "/download/missing.txt") as r:
                assert r.status == 404
                assert r.headers["Content-Type"].startswith("application/json")
                assert await r.json() == {"error": "File not found"}

        # Names that point outside uploads/ (or at a directory), sent byte for byte as written:
        # catzilla refuses the traversals (400), the example's is_file() check the directories.
        targets = [
            "/download/..%2Fsecret.txt",
            "/download/..%2fsecret.txt",
            "/download/%2E%2E%2Fsecret.txt",
            "/download/sub%2F..%2F..%2Fsecret.txt",
            "/download/../secret.txt",
            "/download/" + quote(str(secret), safe=""),  # an absolute path
            "/download/sub",
            "/download/.",
            "/download/..",
            "/download/%2E%2E",
            "/download/sample.bin%00",
        ]
        for target in targets:
            r = await raw_request(port, target)
            assert r.status in (400, 404), "%s -> %d %r" % (target, r.status, r.body[:200])
            assert token.encode() not in r.body, "%s served the secret" % target

        # the server still works after all that
        async with client_session() as session:
            async with session.get(url + "/download/sample.bin") as r:
                assert r.status == 200 and await r.read() == payload

    with running("file_download", tmp_path) as ex:
        run(check, ex.url, ex.port)


# -- Data Processing Pipeline ----------------------------------------------------------------

def test_processing_pipeline(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with client_session() as session:
            async with session.post(url + "/process-stream") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("application/x-ndjson")
                assert single_header(resp, "Cache-Control") == "no-cache"
                at_most_one(resp, "Connection")
                lines = await read_lines_to_eof(resp, 20)
            assert len(lines) == 101, [line.text[:80] for line in lines[-3:]]
            items = [line.json() for line in lines[:100]]
            assert [item["item_id"] for item in items] == list(range(100))
            first_two = [item["result"] for item in items[:2]]
            assert first_two == ["Processed item 0", "Processed item 1"]
            progress = [item["progress"] for item in items]
            assert progress[0] == 1.0 and progress[-1] == 100.0
            assert all(a < b for a, b in itertools.pairwise(progress))
            done = lines[100].json()
            assert done["event"] == "completed"
            assert done["total_processed"] == 100
            assert "completed_at" in done
            # 100 x 10 ms of processing: the items arrived as they were made, not all at once
            assert lines[99].at - lines[0].at >= 0.5

            async with session.get(url + "/process-stream") as r:
                assert r.status == 405  # the route is POST only

    with running("processing_pipeline", tmp_path) as ex:
        run(check, ex.url)


# -- Simple Connection Tracking --------------------------------------------------------------

def test_connection_status(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with client_session() as session:
            async with session.get(url + "/stream/status") as first:
                assert first.status == 200
                assert first.headers["Content-Type"].startswith("text/event-stream")
                assert single_header(first, "X-Connection-ID") == "conn_0"
                e1 = await read_event(first, 5, "update 1")
                s1 = e1.json()
                assert s1["update_number"] == 1
                assert s1["total_connections"] == 1 and s1["active_connections"] == 1

                async with session.get(url + "/stream/status") as second:
                    assert single_header(second, "X-Connection-ID") == "conn_1"
                    s = (await read_event(second, 5, "update 1 of conn_1")).json()
                    assert s["update_number"] == 1
                    assert s["total_connections"] == 2 and s["active_connections"] == 2

                e2 = await read_event(first, 5, "update 2")
                s2 = e2.json()
                assert s2["update_number"] == 2
                assert e2.at - e1.at >= 1.5, "updates 2 s apart arrived together"

    with running("connection_status", tmp_path) as ex:
        run(check, ex.url)


# -- Broadcasting ----------------------------------------------------------------------------

async def _post_broadcast(session, url: str) -> dict:
    async with session.post(url + "/broadcast") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/json")
        body = await r.json()
    assert body["status"] == "broadcast_sent"
    assert body["message"]["type"] == "manual_broadcast"
    return body


async def _broadcast_until(session, url: str, recipients: int, timeout: float) -> dict:
    """POST /broadcast until it reports ``recipients``; returns that answer."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        body = await _post_broadcast(session, url)
        seen.append(body["recipients"])
        if body["recipients"] == recipients:
            return body
        assert time.monotonic() < deadline, "recipients never became %d: %r" % (recipients, seen)
        await asyncio.sleep(0.1)  # poll interval


def _is_manual(timestamp: str):
    def match(ev: Event) -> bool:
        return json_type(ev) == "manual_broadcast" and ev.json()["timestamp"] == timestamp
    return match


def test_broadcast(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with client_session() as session:
            one = await session.get(url + "/broadcast-stream")
            two = await session.get(url + "/broadcast-stream")
            try:
                for resp in (one, two):
                    assert resp.status == 200
                    assert resp.headers["Content-Type"].startswith("text/event-stream")
                ids = {single_header(one, "X-Connection-ID"), single_header(two, "X-Connection-ID")}
                assert len(ids) == 2 and all(len(i) == 36 for i in ids)

                # a subscriber counts once its generator has started: poll until both have
                sent = await _broadcast_until(session, url, 2, 5)
                stamp = sent["message"]["timestamp"]
                for name, resp in (("one", one), ("two", two)):
                    ev, _ = await read_event_until(
                        resp, _is_manual(stamp), 5, "the manual broadcast on " + name)
                    assert ev.json()["message"] == "Hello from server!"

                # one leaves: its generator's finally removes its queue
                one.close()
                sent = await _broadcast_until(session, url, 1, 3)
                ev, _ = await read_event_until(
                    two, _is_manual(sent["message"]["timestamp"]), 5,
                    "the broadcast after one left")
                assert ev.json()["message"] == "Hello from server!"
            finally:
                one.close()
                two.close()

    with running("broadcast", tmp_path) as ex:
        run(check, ex.url)


# -- Simple Chat System ----------------------------------------------------------------------

def test_chat(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with client_session() as session:
            alice = await session.get(url + "/chat/stream", params={"name": "Alice"})
            bob = None
            try:
                assert alice.status == 200
                assert alice.headers["Content-Type"].startswith("text/event-stream")
                await read_event_until(alice, chat_event("user_joined", user="Alice"), 5,
                                       "Alice's own join notice")

                bob = await session.get(url + "/chat/stream", params={"name": "Bob"})
                assert bob.status == 200
                joined, before = await read_event_until(
                    bob, chat_event("user_joined", user="Bob"), 5, "Bob's join notice")
                assert joined.json()["clients_count"] == 2
                # Alice joined first: her notice reaches Bob from the history
                assert any(chat_event("user_joined", user="Alice")(e) for e in before), [
                    e.data for e in before]
                await read_event_until(alice, chat_event("user_joined", user="Bob"), 5,
                                       "Bob's join notice on Alice's stream")

                async with session.post(url + "/chat/send",
                                        params={"sender": "Alice", "message": "Hi"}) as r:
                    assert r.status == 200
                    sent = await r.json()
                assert sent["status"] == "message_sent"
                assert (sent["message"]["sender"], sent["message"]["message"]) == ("Alice", "Hi")
                for who, resp in (("Bob", bob), ("Alice", alice)):
                    ev, _ = await read_event_until(
                        resp, chat_event("chat_message", sender="Alice", message="Hi"), 5,
                        "Alice's message on %s's stream" % who)
                    assert ev.json()["timestamp"] == sent["message"]["timestamp"]

                async with session.post(url + "/chat/send",
                                        params={"sender": "Bob", "message": "héllo & wörld"}) as r:
                    assert r.status == 200
                await read_event_until(
                    alice, chat_event("chat_message", sender="Bob", message="héllo & wörld"), 5,
                    "Bob's message on Alice's stream")

                # idle: a heartbeat about every second
                h1, _ = await read_event_until(bob, lambda e: json_type(e) == "heartbeat", 5,
                                               "a heartbeat")
                h2 = await read_event(bob, 3, "the next heartbeat")
                assert json_type(h2) == "heartbeat", h2.data
                assert 0.7 <= h2.at - h1.at <= 2.0, h2.at - h1.at

                alice.close()
                left, _ = await read_event_until(bob, chat_event("user_left", user="Alice"), 4,
                                                 "Alice's leave notice on Bob's stream")
                assert left.json()["clients_count"] == 1
            finally:
                alice.close()
                if bob is not None:
                    bob.close()

    with running("chat", tmp_path) as ex:
        run(check, ex.url)


# -- Live Analytics Dashboard ----------------------------------------------------------------

COUNTERS = ("page_views", "unique_visitors", "api_calls", "errors")


def _is_update(ev: Event) -> bool:
    value = ev.json()
    return "type" not in value and all(isinstance(value.get(k), int) for k in COUNTERS)


def test_analytics(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with client_session() as session:
            subs = [await session.get(url + "/analytics-stream") for _ in range(2)]
            try:
                for resp in subs:
                    assert resp.status == 200
                    assert resp.headers["Content-Type"].startswith("text/event-stream")
                first = await read_event(subs[0], 5, "the current state")
                state = first.json()
                assert _is_update(first), state
                assert "timestamp" in state

                # The simulation ticks every 2 s and tracks something on most ticks; each
                # tracked event is broadcast. Two updates, then one on the other subscriber.
                previous = state
                for n in (1, 2):
                    ev, skipped = await read_event_until(
                        subs[0], _is_update, 7, "analytics update %d" % n)
                    assert all(json_type(e) == "heartbeat" for e in skipped)
                    update = ev.json()
                    assert all(update[k] >= previous[k] for k in COUNTERS), (previous, update)
                    if n == 2:
                        assert sum(update[k] for k in COUNTERS) > sum(
                            previous[k] for k in COUNTERS), (previous, update)
                    previous = update
                await read_event(subs[1], 5, "subscriber 2's current state")
                await read_event_until(subs[1], _is_update, 7, "an update on subscriber 2")
            finally:
                for resp in subs:
                    resp.close()

    with running("analytics", tmp_path) as ex:
        run(check, ex.url)


# -- Memory Efficient Streaming --------------------------------------------------------------

def test_large_dataset(tmp_path: Path) -> None:
    def check_records(lines: list[bytes]) -> None:
        assert len(lines) == 100
        batches = [json.loads(line) for line in lines]
        assert [b["batch_start"] for b in batches] == list(range(0, 10000, 100))
        assert all(b["batch_size"] == 100 and b["total_records"] == 10000 for b in batches)
        ids = [record["id"] for b in batches for record in b["batch"]]
        assert ids == list(range(10000))
        assert batches[-1]["batch"][-1]["data"] == "Record 9999"
        assert batches[0]["progress"] == 1.0 and batches[-1]["progress"] == 100.0

    async def check(url: str, port: int) -> None:
        raw = await raw_request(port, "/large-dataset", timeout=20)
        assert raw.status == 200
        assert raw.header_values("transfer-encoding") == ["chunked"], raw.headers
        assert raw.header_values("content-length") == []
        assert raw.header_values("content-type")[0].startswith("application/x-ndjson")
        chunks = decode_chunked(raw.body)
        assert len(chunks) > 1, "one chunk: the body was buffered"
        check_records(b"".join(chunks).splitlines())

        async with client_session() as session, session.get(url + "/large-dataset") as resp:
            assert resp.status == 200
            lines = await read_lines_to_eof(resp, 20)
        check_records([line.text.encode() for line in lines])

    with running("large_dataset", tmp_path) as ex:
        run(check, ex.url, ex.port)


# -- Connection Health Monitoring ------------------------------------------------------------

def test_health_monitored(tmp_path: Path) -> None:
    """Also: SIGINT while a client is still reading an endless stream stops the server."""

    async def check(ex) -> None:
        async with client_session() as session:
            t_request = time.monotonic()
            async with session.get(ex.url + "/health-monitored-stream") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/event-stream")
                assert single_header(resp, "X-Accel-Buffering") == "no"
                assert single_header(resp, "Cache-Control") == "no-cache"
                at_most_one(resp, "Connection")

                ping, before = await read_event_until(resp, lambda e: e.event == "ping", 13,
                                                      "an `event: ping`")
                assert json_type(ping) == "ping"
                assert before[0].at - t_request < 2.0
                counters = [e.json()["counter"] for e in before]
                assert all(json_type(e) == "data" and e.json()["status"] == "healthy"
                           for e in before)
                assert counters == list(range(len(counters))) and len(counters) >= 8, counters
                assert ping.at - before[0].at >= 8.0  # one data event a second
                after = await read_event(resp, 3, "the data event after the ping")
                assert after.json()["counter"] == counters[-1] + 1

                # Ctrl+C while this client still reads: the server must still stop, and the
                # stream end (cleanly or cut short) rather than hang.
                seconds = await asyncio.to_thread(ex.stop, 10.0)
                assert seconds < 10.0

                async def drain() -> None:
                    while await resp.content.readany():
                        pass
                try:
                    await within(drain(), 3, "the stream to end after the server stopped")
                except aiohttp.ClientPayloadError:
                    pass  # cut short: the client sees a truncated chunked body

    with running("health_monitored", tmp_path) as ex:
        run(check, ex)
