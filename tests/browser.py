"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe).

The browser reads JSON commands, each ended by a NUL byte, on its fd 3 and answers on fd 4: no
websocket client, no driver download. Enough of the protocol to open pages, type into forms,
click, read the DOM and the cookie jar.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest


def chromium_or_skip() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            raise AssertionError("CI must install Debian's chromium for the dashboard test")
        pytest.skip("chromium not installed")
    return path


_ON_FDS_3_4 = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
               "os.execv(sys.argv[3], sys.argv[3:])")


def _above_4(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    def __init__(self, chromium: str, profile: Path, timeout: float = 30.0) -> None:
        self.timeout = timeout
        profile.mkdir(parents=True, exist_ok=True)
        self._log = profile.parent / f"{profile.name}.log"
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Above fd 4, or putting one end on fd 3 could overwrite the other.
        to_browser_r, from_browser_w = _above_4(to_browser_r), _above_4(from_browser_w)
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 "--remote-debugging-pipe"]
        # A tiny Python exec wrapper puts the pipe ends on fds 3 and 4, then becomes Chromium.
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _ON_FDS_3_4, str(to_browser_r), str(from_browser_w),
             chromium, *flags, "about:blank"], pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL, stderr=self._log.open("wb"))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._id = 0
        self._events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget",
                                  {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.call("Browser.close")
            self._proc.wait(10)
        except Exception:
            self._proc.kill()
            self._proc.wait(10)
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)

    def call(self, method: str, params: dict[str, Any] | None = None, *,
             session: bool = False) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        wanted = self._id
        answer = self._next(lambda m: m.get("id") == wanted)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    def open(self, url: str) -> None:
        self._events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_load()

    def navigate_by(self, expression: str) -> None:
        """Run script that navigates (a click on a submit button) and wait for the new page."""
        self._events.clear()
        self.js(expression)
        self.wait_load()

    def wait_load(self) -> None:
        self._next(lambda m: m.get("method") == "Page.loadEventFired", events=True)

    def js(self, expression: str) -> Any:
        out = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, session=True)
        if "exceptionDetails" in out:
            raise AssertionError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def events(self, *methods: str) -> list[dict[str, Any]]:
        """Protocol events received so far (since the last `open`) with these method names;
        enable their domain first (`call("Log.enable", session=True)`)."""
        return [m for m in self._events if m.get("method") in methods]

    def screenshot(self) -> bytes:
        """The whole page as PNG bytes."""
        import base64

        out = self.call("Page.captureScreenshot", {"format": "png",
                                                   "captureBeyondViewport": True}, session=True)
        return base64.b64decode(out["data"])

    def cookies(self) -> list[dict[str, Any]]:
        return list(self.call("Network.getCookies", session=True)["cookies"])

    def _next(self, pred: Any, *, events: bool = False) -> dict[str, Any]:
        if events:
            for i, m in enumerate(self._events):
                if pred(m):
                    return self._events.pop(i)
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                if pred(msg):
                    return dict(msg)
                if "method" in msg:
                    self._events.append(msg)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise AssertionError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                log = self._log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"Chromium exited:\n{log}")
            self._buf += chunk
