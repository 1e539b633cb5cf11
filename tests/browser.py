"""Headless Chromium for page tests: Debian's `chromium` driven by Playwright, with no network.

Playwright never downloads a browser here (`executable_path` is the system one). Every request
the page makes to anything but the server under test is recorded and refused, and host names
do not resolve, so a page that needs the internet fails the test instead of loading slowly.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # No DNS: only the loopback server under test can be reached.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@dataclass
class Browser:
    page: object  # playwright.sync_api.Page
    origin: str
    outside: list[str] = field(default_factory=list)  # requests to anywhere else, refused
    console: list[str] = field(default_factory=list)  # console errors (CSP violations, ...)


@contextmanager
def browser(origin: str) -> Iterator[Browser]:
    """A fresh page that may reach `origin` (http://127.0.0.1:PORT) and nothing else."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        try:
            context = chromium.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            seen = Browser(page, origin)

            def guard(route) -> None:
                url = route.request.url
                if url == origin or url.startswith(origin + "/"):
                    route.continue_()
                else:
                    seen.outside.append(url)
                    route.abort()

            context.route("**/*", guard)
            page.on(
                "console",
                lambda msg: seen.console.append(msg.text) if msg.type == "error" else None,
            )
            page.set_default_timeout(30_000)
            yield seen
            context.close()
        finally:
            chromium.close()
