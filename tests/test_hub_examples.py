"""The broadcast-hub versions of the guide's chat, broadcast and analytics examples
(examples/hub_*.py), each run as its own process on a free loopback port and checked over real
sockets like tests/test_examples.py checks the guide's versions: the same behaviour, plus what
the hub adds (event ids, resuming with Last-Event-ID, ``: ping`` comments as heartbeats)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from _example_runner import (
    EXAMPLES,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Event,
    Example,
    chat_event,
    client_session,
    json_type,
    read_event,
    read_event_until,
    run_example,
)


class Script(Example):
    """An example file that is not one of the guide's (``examples/hub_chat.py``,
    ``examples/dashboard/app.py``), started with extra environment variables."""

    def __init__(self, script: Path, workdir: Path, env: dict[str, str]) -> None:
        super().__init__(script.stem, workdir)
        self.script = script
        self.stdout_path = workdir / (script.stem + ".stdout")
        self.stderr_path = workdir / (script.stem + ".stderr")
        self.env = env

    def start(self, timeout: float = START_TIMEOUT) -> None:
        with mock.patch.dict(os.environ, self.env):  # Example.start copies os.environ
            super().start(timeout)


@contextlib.contextmanager
def running_script(script: Path, workdir: Path, *, stop_timeout: float = STOP_TIMEOUT,
                   **env: str) -> Iterator[Script]:
    """Like _example_runner.running: SIGINT on leaving, exit code 0, no traceback."""
    with run_example(Script(script, workdir, env), stop_timeout) as example:
        yield example


def run(coro_fn, *args):
    return asyncio.run(coro_fn(*args))


def single_header(resp, name: str) -> str:
    key = name.lower().encode()
    values = [v.decode("latin-1") for k, v in resp.raw_headers if k.lower() == key]
    assert len(values) == 1, "expected one %s header, got %r" % (name, values)
    return values[0]


def check_sse_head(resp) -> None:
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert single_header(resp, "Cache-Control") == "no-cache"
    assert "Content-Length" not in resp.headers


def is_ping(ev: Event) -> bool:
    return ev.lines == [": ping"]


async def read_data_event(resp, timeout: float, what: str) -> Event:
    """The next event that is not a ``: ping`` comment."""
    ev, _ = await read_event_until(resp, lambda e: not is_ping(e), timeout, what)
    return ev


def consecutive(ids: list[int]) -> bool:
    return ids == list(range(ids[0], ids[0] + len(ids))) if ids else True


# -- Broadcasting ----------------------------------------------------------------------------

def _is_manual(timestamp: str):
    def match(ev: Event) -> bool:
        return json_type(ev) == "manual_broadcast" and ev.json()["timestamp"] == timestamp
    return match


async def _post_broadcast(session, url: str) -> dict:
    async with session.post(url + "/broadcast") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/json")
        body = await r.json()
    assert body["status"] == "broadcast_sent"
    assert body["message"]["type"] == "manual_broadcast"
    assert body["message"]["message"] == "Hello from server!"
    return body


def test_hub_broadcast(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with client_session() as session:
            one = await session.get(url + "/broadcast-stream")
            two = await session.get(url + "/broadcast-stream")
            three = None
            try:
                for resp in (one, two):
                    check_sse_head(resp)
                ids = {single_header(one, "X-Connection-ID"), single_header(two, "X-Connection-ID")}
                assert len(ids) == 2 and all(len(i) == 36 for i in ids)

                # A hub subscriber counts from the moment its response head is sent: no polling.
                sent = await _post_broadcast(session, url)
                assert sent["recipients"] == 2
                seen = {}
                for name, resp in (("one", one), ("two", two)):
                    ev, before = await read_event_until(
                        resp, _is_manual(sent["message"]["timestamp"]), 5,
                        "the manual broadcast on " + name)
                    seen[name] = ev.id
                    # the periodic broadcasts (every 0.2 s here) keep their counter order
                    counters = [e.json()["id"] for e in before if json_type(e) == "broadcast"]
                    assert consecutive(counters), counters
                assert seen["one"] == seen["two"] and seen["one"].isdigit(), seen

                # One stream's event ids, read for a while: consecutive, as published.
                got = [int(seen["two"])]
                while len(got) < 6:
                    got.append(int((await read_data_event(two, 3, "a broadcast")).id))
                assert consecutive(got), got

                # one leaves: the hub drops it as soon as the server sees the disconnect
                last_on_one = int(seen["one"])
                one.close()
                deadline = time.monotonic() + 3
                while True:
                    sent = await _post_broadcast(session, url)
                    if sent["recipients"] == 1:
                        break
                    assert sent["recipients"] == 2
                    assert time.monotonic() < deadline, "the closed stream stayed subscribed"
                    await asyncio.sleep(0.05)  # poll interval
                await read_event_until(two, _is_manual(sent["message"]["timestamp"]), 5,
                                       "the broadcast after one left")

                # It comes back with Last-Event-ID: it first gets every event it missed
                # (periodic and manual ones), in order, then the live ones.
                three = await session.get(url + "/broadcast-stream",
                                          headers={"Last-Event-ID": str(last_on_one)})
                check_sse_head(three)
                resumed = []
                stamp = sent["message"]["timestamp"]
                while not resumed or not _is_manual(stamp)(resumed[-1]):
                    resumed.append(await read_data_event(three, 5, "the missed events"))
                resumed_ids = [int(e.id) for e in resumed]
                assert resumed_ids[0] == last_on_one + 1, resumed_ids
                assert consecutive(resumed_ids), resumed_ids
                assert sum(json_type(e) == "broadcast" for e in resumed) >= 1
                # and then live events, continuing the sequence
                nxt = await read_data_event(three, 3, "a live broadcast after the replay")
                assert int(nxt.id) == resumed_ids[-1] + 1
            finally:
                one.close()
                two.close()
                if three is not None:
                    three.close()

    with running_script(EXAMPLES / "hub_broadcast.py", tmp_path,
                        BROADCAST_INTERVAL="0.2") as ex:
        run(check, ex.url)


# -- Simple Chat System ----------------------------------------------------------------------

def test_hub_chat(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with client_session() as session:
            alice = await session.get(url + "/chat/stream", params={"name": "Alice"})
            bob = None
            try:
                check_sse_head(alice)
                first = await read_data_event(alice, 5, "Alice's first event")
                assert chat_event("user_joined", user="Alice", clients_count=1)(first), first.data
                assert first.id == "1"  # the room's first message (id 0 opened the room)

                bob = await session.get(url + "/chat/stream", params={"name": "Bob"})
                check_sse_head(bob)
                joined, before = await read_event_until(
                    bob, chat_event("user_joined", user="Bob"), 5, "Bob's join notice")
                assert joined.json()["clients_count"] == 2
                # Alice joined first: her notice reaches Bob from the history, before his own
                before = [e for e in before if not is_ping(e)]
                assert [e.id for e in before] == ["1"], [e.data for e in before]
                assert chat_event("user_joined", user="Alice")(before[0])
                await read_event_until(alice, chat_event("user_joined", user="Bob"), 5,
                                       "Bob's join notice on Alice's stream")

                async with session.post(url + "/chat/send",
                                        params={"sender": "Alice", "message": "Hi"}) as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"].startswith("application/json")
                    sent = await r.json()
                assert sent["status"] == "message_sent"
                assert (sent["message"]["sender"], sent["message"]["message"]) == ("Alice", "Hi")
                for who, resp in (("Bob", bob), ("Alice", alice)):
                    ev = await read_data_event(resp, 5, "Alice's message on %s's stream" % who)
                    assert chat_event("chat_message", sender="Alice", message="Hi")(ev), ev.data
                    assert ev.json()["timestamp"] == sent["message"]["timestamp"]
                    assert ev.id == "3"

                async with session.post(url + "/chat/send",
                                        params={"sender": "Bob", "message": "héllo & wörld"}) as r:
                    assert r.status == 200
                ev = await read_data_event(alice, 5, "Bob's message on Alice's stream")
                bob_said = chat_event("chat_message", sender="Bob", message="héllo & wörld")
                assert bob_said(ev), ev.data

                # idle: a `: ping` comment every PING (0.5 s here) instead of heartbeat events
                p1 = await read_event(bob, 5, "a ping")
                while not is_ping(p1):
                    p1 = await read_event(bob, 5, "a ping")
                p2 = await read_event(bob, 3, "the next ping")
                assert is_ping(p2), p2.lines
                assert 0.3 <= p2.at - p1.at <= 1.5, p2.at - p1.at

                # a newcomer gets the last 10 messages: send enough to push older ones out
                for n in range(12):
                    async with session.post(url + "/chat/send",
                                            params={"sender": "Bob", "message": str(n)}) as r:
                        assert r.status == 200
                async with session.get(url + "/chat/stream", params={"name": "Carol"}) as carol:
                    joined, history = await read_event_until(
                        carol, chat_event("user_joined", user="Carol"), 5, "Carol's join notice")
                    assert len(history) == 9, [e.data for e in history]
                    assert [e.json()["message"] for e in history] == [str(n) for n in range(3, 12)]
                    assert joined.json()["clients_count"] == 3
                left, _ = await read_event_until(bob, chat_event("user_left", user="Carol"), 4,
                                                 "Carol's leave notice on Bob's stream")
                assert left.json()["clients_count"] == 2

                alice.close()
                left, _ = await read_event_until(bob, chat_event("user_left", user="Alice"), 4,
                                                 "Alice's leave notice on Bob's stream")
                assert left.json()["clients_count"] == 1
            finally:
                alice.close()
                if bob is not None:
                    bob.close()

    with running_script(EXAMPLES / "hub_chat.py", tmp_path, PING="0.5") as ex:
        run(check, ex.url)
        assert "Chat client left: Alice" in ex.stdout()


# -- Live Analytics Dashboard ----------------------------------------------------------------

COUNTERS = ("page_views", "unique_visitors", "api_calls", "errors")


def _is_update(ev: Event) -> bool:
    if is_ping(ev) or ev.event is not None:
        return False
    value = ev.json()
    return "type" not in value and all(isinstance(value.get(k), int) for k in COUNTERS)


def test_hub_analytics(tmp_path: Path) -> None:
    async def check(url: str) -> None:
        async with client_session() as session:
            subs = [await session.get(url + "/analytics-stream") for _ in range(2)]
            try:
                for resp in subs:
                    check_sse_head(resp)
                first = await read_event(subs[0], 5, "the current state")
                assert _is_update(first), first.lines
                assert "timestamp" in first.json()
                assert int(first.id) >= 1

                # The simulation ticks every 0.3 s here and tracks something on most ticks;
                # each tracked change is published as a full snapshot, ids consecutive.
                previous, ids = first.json(), [int(first.id)]
                for n in (1, 2, 3):
                    ev = await read_data_event(subs[0], 5, "analytics update %d" % n)
                    assert _is_update(ev), ev.lines
                    update = ev.json()
                    assert all(update[k] >= previous[k] for k in COUNTERS), (previous, update)
                    assert sum(update[k] for k in COUNTERS) > sum(
                        previous[k] for k in COUNTERS), (previous, update)
                    previous = update
                    ids.append(int(ev.id))
                assert consecutive(ids), ids
                second = await read_event(subs[1], 5, "subscriber 2's current state")
                assert _is_update(second)
                await read_event_until(subs[1], _is_update, 5, "an update on subscriber 2")

                # subscriber 1 leaves and comes back with Last-Event-ID: it misses nothing.
                # It stays away until subscriber 2 has seen 3 more updates published.
                subs[0].close()
                await read_event_until(
                    subs[1], lambda e: _is_update(e) and int(e.id) >= ids[-1] + 3, 5,
                    "3 updates published while subscriber 1 is away")
                async with session.get(url + "/analytics-stream",
                                       headers={"Last-Event-ID": str(ids[-1])}) as again:
                    check_sse_head(again)
                    resumed = []
                    while len(resumed) < 4:
                        resumed.append(await read_data_event(again, 5, "the missed updates"))
                    assert [int(e.id) for e in resumed] == list(range(ids[-1] + 1, ids[-1] + 5))
                    assert all(_is_update(e) for e in resumed)
                    assert all(resumed[0].json()[k] >= previous[k] for k in COUNTERS)
            finally:
                for resp in subs:
                    resp.close()

    with running_script(EXAMPLES / "hub_analytics.py", tmp_path, ANALYTICS_TICK="0.3") as ex:
        run(check, ex.url)
