"""``livespace demo``: a workspace worth looking at, and the page links to open it.

Seeds the configured store (the same ``DATABASE_URL`` and data dir as ``livespace
serve``) with a workspace of a dozen contacts, a few notes and three members, then mints
a token for two of them with the configured secret. Each link carries the workspace id
and the token in the URL fragment (``/#workspace=<id>&token=<jwt>``), which the browser
never sends to the server, so no token reaches an access log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from livespace.auth import TokenVerifier
from livespace.commands import AddNote, CreateContact
from livespace.config import Settings
from livespace.store import Actor, Store

DEFAULT_URL = "http://127.0.0.1:8001"


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    email: str
    role: str


OWNER = Person("maya", "Maya Okafor", "maya@livespace.example", "owner")
COLLEAGUE = Person("leo", "Leo Brandt", "leo@livespace.example", "member")
OBSERVER = Person("ines", "Ines Duarte", "ines@livespace.example", "viewer")
PEOPLE = (OWNER, COLLEAGUE, OBSERVER)

#: (name, email, phone, company, tags)
CONTACTS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("Amelia Hart", "amelia.hart@northwind.example", "+44 20 7946 0321", "Northwind Traders",
     ("customer",)),
    ("Bruno Castillo", "bruno@castillo-logistics.example", "+34 91 555 0142",
     "Castillo Logistics", ("lead",)),
    ("Chen Wei", "chen.wei@lumen.example", "+86 21 5555 0199", "Lumen Optics", ("partner",)),
    ("Dana Whitaker", "dana.whitaker@harborbank.example", "+1 617 555 0117", "Harbor Bank",
     ("customer", "renewal")),
    ("Emeka Nwosu", "emeka@brightpath.example", "+234 1 555 0168", "Brightpath Energy",
     ("lead",)),
    ("Freya Lindqvist", "freya.lindqvist@fjord.example", "+46 8 555 0134", "Fjord Analytics",
     ("customer",)),
    ("Gabriel Moreau", "g.moreau@atelier-moreau.example", "+33 1 5555 0176", "Atelier Moreau",
     ("prospect",)),
    ("Hana Sato", "hana.sato@kumo.example", "+81 3 5555 0158", "Kumo Software", ("partner",)),
    ("Isaac Goldberg", "isaac@goldberg-law.example", "+1 212 555 0183", "Goldberg & Reyes LLP",
     ("customer",)),
    ("Julia Rossi", "julia.rossi@verdeviva.example", "+39 02 5555 0127", "Verde Viva",
     ("lead",)),
    ("Kwame Mensah", "kwame@accraport.example", "+233 30 555 0191", "Accra Port Services",
     ("prospect",)),
    ("Lucía Fernández", "lucia@solaria.example", "+52 55 5555 0104", "Solaria Homes",
     ("customer", "vip")),
)

#: (contact name, author, body)
NOTES: tuple[tuple[str, Person, str], ...] = (
    ("Amelia Hart", OWNER, "Renewal call went well: they want the annual plan with 40 seats."),
    ("Amelia Hart", COLLEAGUE, "Sent the updated quote; waiting on their finance team."),
    ("Bruno Castillo", COLLEAGUE, "Met at the Madrid logistics fair. Interested in fleet "
     "contact sharing for 12 dispatchers."),
    ("Dana Whitaker", OWNER, "Contract ends in March. Security review questionnaire is with "
     "their IT."),
    ("Freya Lindqvist", COLLEAGUE, "Asked for an API walkthrough next Tuesday at 10:00 CET."),
    ("Hana Sato", OWNER, "Partnership: co-marketing webinar in Q2, Hana owns the agenda."),
    ("Lucía Fernández", OWNER, "VIP: always copy her assistant (marta@solaria.example)."),
    ("Lucía Fernández", COLLEAGUE, "Prefers WhatsApp over email for quick questions."),
)


@dataclass(frozen=True, slots=True)
class Demo:
    workspace_id: str
    workspace_name: str
    links: tuple[tuple[Person, str], ...]


def page_url(base: str, workspace_id: str, token: str) -> str:
    """The page's sign-in link: workspace and token in the fragment only."""
    return f"{base.rstrip('/')}/#workspace={workspace_id}&token={token}"


def base_url(explicit: str | None) -> str:
    """``--url``, else ``LIVESPACE_URL``, else the address ``livespace serve`` uses."""
    return (explicit or os.environ.get("LIVESPACE_URL") or DEFAULT_URL).rstrip("/")


async def seed(store: Store, name: str) -> str:
    """Create the demo workspace with its members, contacts and notes; its id."""
    workspace = await store.create_workspace(name, OWNER.id)
    for person in PEOPLE[1:]:
        await store.set_member(workspace.id, person.id, person.role)
    creator = Actor(OWNER.id, OWNER.name)
    ids: dict[str, str] = {}
    for contact_name, email, phone, company, tags in CONTACTS:
        done = await store.apply(
            workspace.id, creator,
            CreateContact(contact_name, email, phone, company, tags), None,
        )
        ids[contact_name] = str(done.entity["id"])
    for contact_name, author, body in NOTES:
        await store.apply(
            workspace.id, Actor(author.id, author.name), AddNote(ids[contact_name], body), None
        )
    return workspace.id


async def create(store: Store, settings: Settings, *, name: str, url: str,
                 ttl_s: int) -> Demo:
    """Seed a new demo workspace and mint page links for its owner and a colleague."""
    verifier = TokenVerifier(settings.with_secret())
    workspace_id = await seed(store, name)
    links = tuple(
        (person, page_url(url, workspace_id,
                          verifier.mint(person.id, email=person.email, name=person.name,
                                        ttl_s=ttl_s)))
        for person in (OWNER, COLLEAGUE)
    )
    return Demo(workspace_id, name, links)


def describe(demo: Demo, ttl_s: int) -> str:
    """What the terminal shows: the workspace and one link per person."""
    hours = ttl_s / 3600
    lines = [
        f"Demo workspace {demo.workspace_name!r} ({demo.workspace_id}): "
        f"{len(CONTACTS)} contacts, {len(NOTES)} notes, members "
        + ", ".join(f"{p.name} ({p.role})" for p in PEOPLE) + ".",
        "",
        "Open each link in its own browser window (or one in a private window):",
        "",
    ]
    for person, link in demo.links:
        lines += [f"  {person.name} ({person.role}):", f"  {link}", ""]
    lines.append(
        f"The links sign in for {hours:g} h. The token is in the part after '#', "
        "which the browser keeps to itself; share a link only with whom it names."
    )
    return "\n".join(lines)
