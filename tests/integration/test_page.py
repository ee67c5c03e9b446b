"""The live page in a real browser: two people (two browser contexts) signed in with the
links ``livespace demo`` prints, on a real server, through the accessible names of
DESIGN.md section 7.

Maya works on a laptop (1280x800) straight to the server; Leo on a phone (390x844)
through a :class:`Link` the tests cut and restore. Screenshots go to
``test-artifacts/page/``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from page_harness import DESKTOP, PHONE, Demo, Link, Person, demo, launch
from playwright.async_api import Browser, ConsoleMessage, async_playwright, expect

pytestmark = pytest.mark.integration

MAYA, LEO = "Maya Okafor", "Leo Brandt"


@pytest.fixture(scope="module")
def engine() -> str:
    """The page is the same on every store: one engine keeps the browser tests lean."""
    return "sqlite"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Team:
    demo: Demo
    maya: Person
    leo: Person
    leo_link: Link

    async def cut_leo(self) -> None:
        """Leo's network goes: his sockets die and the browser says it is offline."""
        await self.leo.context.set_offline(True)
        self.leo_link.cut()

    async def restore_leo(self) -> None:
        self.leo_link.restore()
        await self.leo.context.set_offline(False)


@pytest.fixture
async def team(server: Any, browser: Browser,
               request: pytest.FixtureRequest) -> AsyncIterator[Team]:
    workspace = demo(server)
    link = await Link(server.port).start()
    maya = await Person.open(browser, MAYA, workspace.link(MAYA), DESKTOP)
    leo = await Person.open(browser, LEO, workspace.link(LEO, link.base), PHONE)
    team = Team(workspace, maya, leo, link)
    failed_before = request.session.testsfailed
    try:
        yield team
    finally:
        if request.session.testsfailed > failed_before:
            for person in (maya, leo):
                await person.keep_evidence(request.node.name)
        await maya.close()
        await leo.close()
        await link.close()
    for person in (maya, leo):
        token = workspace.token(person.name)
        assert not [u for u in person.urls if token in u], "the token was in a URL"


def no_console_errors(person: Person, *, allowed_origin: str | None = None) -> None:
    """No console error, except (with ``allowed_origin``) the browser's own reports of
    requests to that origin failing while its network was cut."""
    unexpected = [
        e for e in person.console_errors
        if not (allowed_origin and f"{allowed_origin}/" in e
                and ("net::ERR_" in e or "WebSocket connection" in e))
    ]
    assert not unexpected, f"{person.name}'s console: {unexpected}"


async def test_two_people_see_each_other_work(team: Team) -> None:
    maya, leo = team.maya, team.leo
    # the demo's workspace, and who is online
    await expect(maya.contacts.get_by_role("listitem")).to_have_count(12)
    await expect(leo.contacts.get_by_role("listitem")).to_have_count(12)
    await expect(maya.online.get_by_role("listitem").filter(has_text=LEO)).to_have_count(1)
    await expect(leo.online.get_by_role("listitem").filter(has_text=MAYA)).to_have_count(1)

    # a contact created by one is shown to the other, once
    await maya.add_contact("Ada Lovelace")
    await expect(leo.contact("Ada Lovelace")).to_have_count(1)
    await expect(maya.contact("Ada Lovelace")).to_have_count(1)

    # viewing and typing
    await leo.open_contact("Ada Lovelace")
    await expect(maya.contact("Ada Lovelace").get_by_label(f"{LEO} is viewing")).to_be_visible()
    await maya.open_contact("Ada Lovelace")
    await expect(leo.contacts).to_be_hidden()  # a phone shows the list or the detail
    await leo.field("Phone").fill("+44 20 7946 0000")
    await expect(maya.detail.get_by_text(f"{LEO} is typing")).to_be_visible()

    # an edit, and a note
    await leo.detail.get_by_role("button", name="Save", exact=True).click()
    await expect(maya.field("Phone")).to_have_value("+44 20 7946 0000")
    await expect(maya.detail.get_by_text(f"{LEO} is typing")).to_have_count(0)
    await maya.add_note("Wants the analytical engine demo on Friday.")
    await expect(leo.notes.get_by_role("listitem")
                 .filter(has_text="analytical engine")).to_have_count(1)
    await expect(maya.notes.get_by_role("listitem")
                 .filter(has_text="analytical engine")).to_have_count(1)

    # call presence, and typing a note
    await leo.page.get_by_role("button", name="Join call").click()
    await expect(maya.online.get_by_role("listitem").filter(has_text=LEO)).to_contain_text(
        "in a call")
    await leo.detail.get_by_label("Add a note", exact=True).fill("Bring the punched cards")
    await expect(maya.detail.get_by_text(f"{LEO} is typing")).to_be_visible()
    await maya.screenshot("desktop")
    await leo.screenshot("phone")

    # search, and a delete seen by the other
    await maya.page.get_by_label("Search contacts").fill("harbor")
    await expect(maya.contacts.get_by_role("listitem")).to_have_count(1)
    await expect(maya.contact("Dana Whitaker")).to_have_count(1)
    await maya.page.get_by_label("Search contacts").fill("")
    await maya.detail.get_by_role("button", name="Delete contact").click()
    await maya.detail.get_by_role("button", name="Delete", exact=True).click()
    await expect(maya.contact("Ada Lovelace")).to_have_count(0)
    await expect(leo.page.get_by_role("alert")).to_contain_text("That contact was deleted.")
    await expect(leo.contact("Ada Lovelace")).to_have_count(0)
    await expect(leo.contacts.get_by_role("listitem")).to_have_count(12)

    no_console_errors(maya)
    no_console_errors(leo)


async def test_network_cut_both_keep_working(team: Team, server: Any) -> None:
    maya, leo = team.maya, team.leo
    await maya.open_contact("Amelia Hart")
    await leo.open_contact("Amelia Hart")

    seeded = len(await server.events("maya", team.demo.workspace))
    await team.cut_leo()
    await expect(leo.status).to_contain_text("Offline")
    # Leo keeps working offline: everything shows at once, marked pending
    await leo.add_note("Called from the train: they sign on Monday.")
    await leo.save("Company", "Northwind Traders Ltd")
    await expect(leo.notes.get_by_role("listitem").filter(has_text="from the train")
                 ).to_contain_text("pending", use_inner_text=True)
    await expect(leo.status).to_contain_text("2 changes waiting")
    await leo.page.get_by_role("button", name="Back to contacts").click()
    await leo.add_contact("Olu Adeyemi")
    await expect(leo.contact("Olu Adeyemi")).to_contain_text("pending", use_inner_text=True)
    await expect(leo.status).to_contain_text("Offline · 3 changes waiting")
    await leo.screenshot("phone-offline")
    # ...and so does Maya, online
    await maya.add_note("Sent them the contract.")
    await maya.add_contact("Grace Hopper")
    await expect(maya.contact("Grace Hopper")).to_have_count(1)
    await expect(leo.contact("Grace Hopper")).to_have_count(0)

    await team.restore_leo()
    await leo.live()
    # both end up with everything, once
    for person in (maya, leo):
        for name in ("Olu Adeyemi", "Grace Hopper"):
            await expect(person.contact(name)).to_have_count(1)
        await expect(person.contact("Olu Adeyemi")).not_to_contain_text("pending",
                                                                     use_inner_text=True)
    await expect(maya.field("Company")).to_have_value("Northwind Traders Ltd")
    await leo.open_contact("Amelia Hart")
    for person in (maya, leo):
        for text in ("from the train", "Sent them the contract"):
            await expect(person.notes.get_by_role("listitem").filter(has_text=text)
                         ).to_have_count(1)
    # and the server applied each change once
    events = await server.events("maya", team.demo.workspace)
    made = Counter((e["type"], e["data"].get("name") or e["data"].get("body"))
                   for e in events if e["actor"]["id"] == "leo" and e["seq"] > seeded)
    assert made == Counter({
        ("note_added", "Called from the train: they sign on Monday."): 1,
        ("contact_updated", "Amelia Hart"): 1,
        ("contact_created", "Olu Adeyemi"): 1,
    }), made

    no_console_errors(maya)
    no_console_errors(leo, allowed_origin=team.leo_link.base)


async def test_conflict_resolved_through_the_page(team: Team) -> None:
    maya, leo = team.maya, team.leo
    await maya.open_contact("Dana Whitaker")
    await leo.open_contact("Dana Whitaker")

    await team.cut_leo()
    await expect(leo.status).to_contain_text("Offline")
    await leo.save("Phone", "+1 617 555 0001")
    await maya.save("Phone", "+1 617 555 0002")
    await expect(maya.field("Phone")).to_have_value("+1 617 555 0002")
    await team.restore_leo()

    conflict = leo.detail.get_by_role("group", name="changed this while you were editing")
    await expect(conflict).to_contain_text("+1 617 555 0001")
    await expect(conflict).to_contain_text("+1 617 555 0002")
    await expect(conflict).to_contain_text(MAYA)
    await leo.screenshot("phone-conflict")
    await conflict.get_by_role("button", name="Keep mine").click()
    await expect(conflict).to_have_count(0)
    await expect(maya.field("Phone")).to_have_value("+1 617 555 0001")
    await expect(leo.field("Phone")).to_have_value("+1 617 555 0001")
    await leo.live()

    # again on Company, where Leo takes theirs: his Email, refused with it, still goes
    await team.cut_leo()
    await expect(leo.status).to_contain_text("Offline")
    await leo.field("Email").fill("dana@harbor.example")
    await leo.save("Company", "Harbor Bank (Boston)")
    await maya.save("Company", "Harbor Bank N.A.")
    await team.restore_leo()
    await expect(conflict).to_contain_text("Harbor Bank (Boston)")
    await expect(conflict).to_contain_text("Harbor Bank N.A.")
    await conflict.get_by_role("button", name="Take theirs").click()
    await expect(conflict).to_have_count(0)
    for person in (maya, leo):
        await expect(person.field("Company")).to_have_value("Harbor Bank N.A.")
        await expect(person.field("Email")).to_have_value("dana@harbor.example")
    await leo.live()

    no_console_errors(maya)
    no_console_errors(leo, allowed_origin=team.leo_link.base)


async def test_sign_in_by_pasting_a_token(server: Any, browser: Browser) -> None:
    workspace = demo(server)
    context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    try:
        page = await context.new_page()
        errors: list[str] = []

        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(message.text)

        page.on("console", console)
        await page.goto(server.http + "/")
        form = page.get_by_role("form", name="Sign in")
        await form.get_by_label("Workspace").fill(workspace.workspace)
        await form.get_by_label("Token").fill("not-a-token")
        await form.get_by_role("button", name="Sign in").click()
        await expect(form.get_by_text("That token was refused")).to_be_visible()
        await form.get_by_label("Token").fill(workspace.token(MAYA))
        await form.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("status")).to_have_text("Live")
        await expect(page.get_by_role("list", name="Contacts", exact=True)
                     .get_by_role("listitem")).to_have_count(12)
        # the keyboard: arrows through the list, Enter opens, Escape closes and returns
        contacts = page.get_by_role("list", name="Contacts", exact=True)
        await contacts.get_by_role("button").first.focus()
        await page.keyboard.press("ArrowDown")
        await page.keyboard.press("Enter")
        detail = page.locator("#detail")
        await expect(detail.get_by_label("Name", exact=True)).to_have_value("Bruno Castillo")
        await page.keyboard.press("Escape")
        await expect(detail.get_by_role("heading", name="No contact open")).to_be_visible()
        await expect(contacts.get_by_role("button", name="Bruno Castillo")).to_be_focused()
        # an unsaved edit survives opening another contact and coming back
        await page.keyboard.press("Enter")
        await detail.get_by_label("Email", exact=True).fill("bruno@example.org")
        await contacts.get_by_role("button", name="Chen Wei").click()
        await expect(detail.get_by_label("Name", exact=True)).to_have_value("Chen Wei")
        await contacts.get_by_role("button", name="Bruno Castillo").click()
        await expect(detail.get_by_label("Email", exact=True)).to_have_value("bruno@example.org")
        await expect(detail.get_by_role("button", name="Save", exact=True)).to_be_enabled()
        # the fragment link is wiped from the address bar once read
        await page.goto(workspace.link(LEO))  # a new link in a signed-in tab: reloads with it
        await expect(page).to_have_url(server.http + "/")
        await expect(page.get_by_role("status")).to_have_text("Live")
        await expect(page.get_by_role("list", name="Online", exact=True)
                     .get_by_role("listitem").filter(has_text=LEO)).to_contain_text("you")
        # a viewer sees everything, and no control to change it
        ines = server.token("ines", name="Ines Duarte")
        await page.goto(f"{server.http}/#workspace={workspace.workspace}&token={ines}")
        await expect(page).to_have_url(server.http + "/")
        await expect(page.get_by_role("list", name="Online", exact=True)
                     .get_by_role("listitem").filter(has_text="Ines Duarte")).to_contain_text("you")
        await expect(page.get_by_role("form", name="New contact")).to_be_hidden()
        await contacts.get_by_role("button", name="Amelia Hart").click()
        await expect(detail.get_by_label("Name", exact=True)).to_have_value("Amelia Hart")
        await expect(detail.get_by_label("Name", exact=True)).not_to_be_editable()
        await expect(detail.get_by_role("button", name="Save")).to_be_hidden()
        await expect(detail.get_by_label("Add a note")).to_be_hidden()
        assert [e for e in errors if "401" not in e] == []
    finally:
        await context.close()


async def test_a_note_written_together(team: Team) -> None:
    """The collaborative note editor: both type into one note's shared document."""
    maya, leo = team.maya, team.leo
    await maya.add_contact("Grace Hopper")
    await expect(leo.contact("Grace Hopper")).to_have_count(1)
    await maya.open_contact("Grace Hopper")
    await leo.open_contact("Grace Hopper")
    await maya.add_note("Compiler")
    for person in (maya, leo):
        note = person.notes.get_by_role("listitem").filter(has_text="Compiler")
        await expect(note).to_have_count(1)
        await note.get_by_role("button", name="Edit together").click()
    mine, his = maya.detail.get_by_label("Shared note"), leo.detail.get_by_label("Shared note")
    for area in (mine, his):
        await expect(area).to_have_value("Compiler")
        await expect(area).to_be_enabled()
    await mine.click()
    await maya.page.keyboard.press("End")
    await maya.page.keyboard.type(" pioneer")
    await expect(his).to_have_value("Compiler pioneer")
    await his.click()
    await leo.page.keyboard.press("Control+Home")
    await leo.page.keyboard.type("Rear Admiral, ")
    await expect(mine).to_have_value("Rear Admiral, Compiler pioneer")
    editing = maya.detail.get_by_role("list", name="Editing").get_by_role("listitem")
    await expect(editing.filter(has_text=f"{LEO} is editing")).to_have_count(1)
    # the note's body (the list, for everyone) follows the document
    for person in (maya, leo):
        await expect(person.notes.get_by_role("listitem")
                     .filter(has_text="Rear Admiral, Compiler pioneer")).to_have_count(1)
    await maya.screenshot("note-together")
    no_console_errors(maya)
    no_console_errors(leo)
