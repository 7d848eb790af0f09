"""The dashboard example (examples/dashboard/) in a real browser: headless Chromium driven by
Playwright for Python. The page's EventSource (through the guide's reconnecting wrapper) shows
live events; the server drops the stream; the page reconnects with the last id it saw and shows
every event id exactly once: none lost, none twice.

Needs Debian's Chromium and the Playwright package (no browser download):
``apt-get install -y chromium`` and ``pip install playwright``. Skipped when either is missing,
except when the CI environment variable is set: there it fails.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest
from _example_runner import EXAMPLES
from test_hub_examples import running_script

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
INTERVAL = 0.2       # seconds between the dashboard's events
RECONNECT_MS = 1000  # the page's reconnectInterval: about 5 events are published meanwhile
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _sync_playwright():
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        missing.append("Playwright for Python (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        missing.append("Chromium at %s (apt-get install -y chromium)" % CHROMIUM)
    if missing:
        message = ("the browser test needs %s; `playwright install` is not needed"
                   % " and ".join(missing))
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


def _post_json(url: str) -> dict:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def _shown_ids(page) -> list[int]:
    return [int(text) for text in page.locator("#ids li").all_inner_texts()]


def test_dashboard_reconnects_without_losing_or_repeating_events(tmp_path: Path) -> None:
    sync_playwright = _sync_playwright()
    with running_script(EXAMPLES / "dashboard" / "app.py", tmp_path,
                        DASHBOARD_INTERVAL=str(INTERVAL), DASHBOARD_TEST_ROUTES="1") as ex, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(8000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            elsewhere: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(ex.url + "/")
                    else elsewhere.append(r.url))

            page.goto("%s/?reconnect=%d" % (ex.url, RECONNECT_MS))
            # events arrive and are shown: the ids, the counters, the chart
            page.wait_for_function("document.querySelectorAll('#ids li').length >= 5")
            assert page.locator("#status").inner_text() == "live"
            assert page.locator("#api_calls").inner_text() not in ("", "–")
            first_ids = _shown_ids(page)
            assert first_ids == list(range(first_ids[0], first_ids[0] + len(first_ids)))

            # A plain EventSource on the same page, which reconnects by itself and sends the
            # Last-Event-ID header (the wrapper passes ?lastEventId= instead).
            page.evaluate("""() => {
                window.plain = { ids: [], opens: 0 };
                const es = new EventSource("/analytics-stream");
                es.onopen = () => { plain.opens += 1; };
                es.onmessage = (e) => { plain.ids.push(Number(e.lastEventId)); };
            }""")
            page.wait_for_function("window.plain.ids.length >= 3")

            # the server drops both streams
            dropped = _post_json(ex.url + "/test/drop-streams")
            assert dropped["dropped"] == 2, dropped
            # the page notices, waits RECONNECT_MS, reconnects with the last id it saw, gets
            # what was published meanwhile, then live events again
            page.wait_for_function("window.dashboard.connects >= 2 && window.plain.opens >= 2")
            page.wait_for_function(
                "n => Array.from(document.querySelectorAll('#ids li'))"
                ".some(li => Number(li.textContent) >= n)", arg=dropped["last_id"] + 10)

            ids = _shown_ids(page)
            assert len(set(ids)) == len(ids), "an event was shown twice: %r" % ids
            assert ids == list(range(ids[0], ids[0] + len(ids))), "an event was lost: %r" % ids
            assert ids[:len(first_ids)] == first_ids
            assert page.evaluate("window.dashboard.ids.map(Number)") == ids

            # the second connection named the last id shown before it, and the server replayed
            # the events published while the page was away (more than one at 5 events/s)
            connections = page.locator("#connections li").all_inner_texts()
            assert page.evaluate("window.dashboard.connects") == 2, connections
            assert connections[0].endswith("GET /analytics-stream"), connections
            match = re.search(r"GET /analytics-stream\?lastEventId=(\d+)$", connections[1])
            assert match, connections
            resumed_after = int(match.group(1))
            assert resumed_after in ids and resumed_after + 1 in ids
            resumed_log = re.search(r"resumed after event %d \(newest is (\d+); from the "
                                    r"\?lastEventId=\)" % resumed_after, ex.stdout())
            assert resumed_log, ex.stdout()
            assert int(resumed_log.group(1)) - resumed_after >= 2, resumed_log.group(0)
            first_resumed = page.locator("#ids li.resumed").all_inner_texts()
            assert first_resumed == [str(resumed_after + 1)], first_resumed

            # the plain EventSource: reconnected by itself with the Last-Event-ID header
            plain = page.evaluate("window.plain")
            assert plain["opens"] == 2, plain
            plain_ids = plain["ids"]
            assert len(set(plain_ids)) == len(plain_ids), "shown twice: %r" % plain_ids
            assert plain_ids == list(range(plain_ids[0], plain_ids[0] + len(plain_ids))), (
                "lost: %r" % plain_ids)
            assert plain_ids[-1] >= dropped["last_id"] + 1, plain_ids
            assert re.search(r"resumed after event \d+ \(newest is \d+; from the "
                             r"Last-Event-ID header\)", ex.stdout()), ex.stdout()

            # the chart: two lines with a point per event (up to 60), axis labels
            for line in ("#line-views", "#line-api"):
                points = page.locator(line).get_attribute("points").split()
                assert len(points) >= min(len(ids) - 1, 60) - 1, (line, len(points))
            assert "event" in page.locator("#grid").inner_html()

            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            data = shot.read_bytes()
            assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, len(data)

            assert not errors, errors
            assert not elsewhere, "the page loaded something from elsewhere: %r" % elsewhere
        finally:
            browser.close()
