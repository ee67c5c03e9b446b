"""What the browser tests share: Debian's chromium under Playwright, people signed in to
the page from ``livespace demo`` links, and a network link that a test can cut.

The browser is ``/usr/bin/chromium`` (``make test`` installs Debian's package when it is
missing); Playwright never downloads one. Every page records its console errors, page
errors and the URLs it requests, so a test can say "no console errors" and "the token
never appeared in a URL".
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Playwright,
    expect,
)

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "page"
LIVESPACE = str(Path(sys.executable).parent / "livespace")
WAIT_MS = 20_000  # generous: two cores shared by several people

expect.set_options(timeout=WAIT_MS)


async def launch(playwright: Playwright) -> Browser:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make browser` "
                           "(apt-get install -y chromium)")
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS,
                                            headless=True)


@dataclass
class Demo:
    workspace: str
    links: dict[str, str]  # person's name -> page link

    def link(self, name: str, base: str | None = None) -> str:
        """``name``'s link, optionally on another base URL (through a cuttable link)."""
        link = self.links[name]
        if base is None:
            return link
        return base.rstrip("/") + link[link.index("/#"):]

    def token(self, name: str) -> str:
        return self.links[name].split("token=", 1)[1]


def demo(server: Any) -> Demo:
    """Run ``livespace demo`` as a user would, on the server's store and secret."""
    done = subprocess.run(
        [LIVESPACE, "demo", "--url", server.http], env=server.env, capture_output=True,
        text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    links: dict[str, str] = {}
    name = None
    for line in done.stdout.splitlines():
        line = line.strip()
        heading = re.match(r"^(.+) \((owner|admin|member|viewer)\):$", line)
        if heading:
            name = heading.group(1)
        elif line.startswith("http") and name:
            links[name] = line
    workspace = re.search(r"#workspace=([^&]+)&", next(iter(links.values()))).group(1)  # type: ignore[union-attr]
    return Demo(workspace, links)


@dataclass
class Person:
    """One person in their own browser context (their own storage, cookies, network)."""

    name: str
    context: BrowserContext
    page: Page
    console_errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    @classmethod
    async def open(cls, browser: Browser, name: str, link: str,
                   viewport: dict[str, int]) -> Person:
        context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = await context.new_page()
        person = cls(name, context, page)
        def console(message: ConsoleMessage) -> None:
            if message.type == "error":  # with where it came from (a failed request's URL)
                person.console_errors.append(f"{message.text} @ {message.location.get('url')}")

        page.on("console", console)
        page.on("pageerror", lambda e: person.console_errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: person.urls.append(r.url))
        page.on("websocket", lambda ws: person.urls.append(ws.url))
        await page.goto(link)
        await person.live()
        return person

    # ---- what the page shows, found by the names DESIGN.md section 7 gives ------------

    @property
    def status(self) -> Locator:
        return self.page.get_by_role("status")

    @property
    def contacts(self) -> Locator:
        return self.page.get_by_role("list", name="Contacts", exact=True)

    def contact(self, name: str) -> Locator:
        return self.contacts.get_by_role("listitem").filter(has_text=name)

    @property
    def online(self) -> Locator:
        return self.page.get_by_role("list", name="Online", exact=True)

    @property
    def detail(self) -> Locator:
        return self.page.locator("#detail")

    def field(self, label: str) -> Locator:
        return self.detail.get_by_label(label, exact=True)

    @property
    def notes(self) -> Locator:
        return self.page.get_by_role("list", name="Notes", exact=True)

    async def live(self) -> None:
        await expect(self.status).to_have_text("Live")

    async def add_contact(self, name: str) -> None:
        form = self.page.get_by_role("form", name="New contact")
        await form.get_by_label("Name", exact=True).fill(name)
        await form.get_by_role("button", name="Add contact").click()

    async def open_contact(self, name: str) -> None:
        await self.contact(name).get_by_role("button").click()
        await expect(self.field("Name")).to_have_value(name)

    async def add_note(self, body: str) -> None:
        await self.detail.get_by_label("Add a note", exact=True).fill(body)
        await self.detail.get_by_role("button", name="Add note", exact=True).click()

    async def save(self, label: str, value: str) -> None:
        await self.field(label).fill(value)
        await self.detail.get_by_role("button", name="Save", exact=True).click()

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path

    async def keep_evidence(self, test: str) -> None:
        """After a failure: a screenshot, the page's text and its console, for the log."""
        with contextlib.suppress(Exception):
            await self.screenshot(f"failed-{test}-{self.name.split()[0].lower()}")
            text = await self.page.locator("body").inner_text()
            print(f"--- {self.name}'s page ---\n{text}\n--- console ---\n"
                  + "\n".join(self.console_errors))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.context.close()


class Link:
    """A TCP link between a browser and the server that a test can cut and restore.

    Cutting resets every connection through it (the browser sees its sockets die, as
    when Wi-Fi drops), and while it is down a new connection is reset at once and no
    byte crosses in either direction.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Link:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> None:
        self.down = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def restore(self) -> None:
        self.down = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        self._open.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            self._open.discard(writer)
            writer.transport.abort()
            return
        self._open.add(up_writer)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while (chunk := await reader.read(65536)) and not self.down:
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()
