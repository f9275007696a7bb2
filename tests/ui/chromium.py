"""Drive a headless system Chromium over the DevTools protocol, to look at the Prefect UI.

The Prefect UI is a single-page app: ``--dump-dom`` after a ``--virtual-time-budget`` shows
what a page renders by itself, but the review form opens only when someone presses
"Resume". So this speaks the DevTools protocol over a websocket instead: navigate, wait
for content, click, read the DOM, take a screenshot. Chromium comes from the system
(``apt-get install -y chromium``, the Makefile's test setup); nothing is downloaded here.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from websockets.sync.client import connect

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
    "--window-size=1400,1600",
    "--hide-scrollbars",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


class Page:
    """One browser tab: ``evaluate`` JavaScript, ``wait_for`` a condition, ``screenshot``."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def send(self, method: str, **params) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def _true(self, expression: str) -> bool:
        try:
            return bool(self.evaluate(expression))
        except RuntimeError:  # the page navigated while the expression ran
            return False

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout_s: float = 60.0, what: str = "") -> None:
        """Until ``expression`` is true. Right after ``goto`` the old document may still be
        there, or be torn down mid-evaluation ("Uncaught"): that counts as not yet."""
        deadline = time.monotonic() + timeout_s
        while not self._true(expression):
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText.slice(0, 2000) : ''")
                raise TimeoutError(f"waited {timeout_s} s for {what or expression}; page says:\n{text}")
            time.sleep(0.5)

    def text(self) -> str:
        return self.evaluate("document.body.innerText")

    def html(self) -> str:
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path: Path) -> Path:
        height = self.evaluate("Math.max(document.body.scrollHeight, window.innerHeight)")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=1400,
            height=min(int(height), 4000),
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@contextmanager
def browser_page(chromium: str, profile_dir: Path) -> Iterator[Page]:
    """A fresh headless Chromium (its own profile folder) and one tab in it."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    port_file = profile_dir / "DevToolsActivePort"
    port_file.unlink(missing_ok=True)  # a stale one names a port nobody listens on
    log = open(profile_dir / "chromium.log", "wb")
    proc = subprocess.Popen(
        [chromium, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not open its DevTools port (exit {proc.poll()})")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20) as ws:
            tab = Page(ws)
            tab.send("Page.enable")
            yield tab
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
