"""The pure side of group commit: what a batch of mutations does (livespace.store.domain)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from livespace.codes import Error, Problem
from livespace.commands import CONTACT_FIELDS, AddNote, CreateContact, DeleteContact, UpdateContact
from livespace.store.domain import (
    Contact,
    Request,
    create_contact,
    delete_contact,
    deleted_entity,
    plan,
    referenced_contacts,
    update_contact,
)
from livespace.store.model import Actor, Committed

ALICE = Actor("alice", "Alice")
BOB = Actor("bob", "Bob")
NOW = "2025-01-02T03:04:05.678Z"
WS = "ws1"


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"id{next(counter)}"


def stored(contact_id: str = "c1", version: int = 1, **fields: object) -> Contact:
    created = create_contact(WS, ALICE, CreateContact("Ada", email="a@x.org"), "t0", contact_id)
    entity = {**created.entity, **fields, "version": version}
    return Contact(entity, {f: 1 for f in CONTACT_FIELDS})


def test_create_update_delete_are_pure_and_versioned() -> None:
    c = create_contact(WS, ALICE, CreateContact("Ada", tags=("vip",)), NOW, "c1")
    assert not c.stored and c.live
    assert c.entity["version"] == 1 and c.entity["created_by"] == "alice"
    assert c.entity["tags"] == ["vip"] and c.field_versions == {f: 1 for f in CONTACT_FIELDS}

    v2 = update_contact(c, UpdateContact("c1", {"name": "Ada L"}, 1), NOW)
    assert (v2.entity["version"], v2.entity["name"], v2.field_versions["name"]) == (2, "Ada L", 2)
    assert c.entity["name"] == "Ada" and c.field_versions["name"] == 1  # not changed in place
    assert v2.stored is False  # created in the batch: still to be inserted

    gone = delete_contact(v2, NOW)
    assert not gone.live and gone.deleted_at == NOW and gone.entity["version"] == 3
    assert deleted_entity(gone) == {"id": "c1", "workspace_id": WS, "version": 3,
                                    "deleted_at": NOW, "deleted": True, "name": "Ada L"}


def test_stale_base_version_merges_or_conflicts_per_field() -> None:
    c = stored()
    v2 = update_contact(c, UpdateContact("c1", {"name": "N"}, 1), NOW)
    merged = update_contact(v2, UpdateContact("c1", {"email": "e@x.org"}, 1), NOW)
    assert (merged.entity["version"], merged.entity["name"]) == (3, "N")
    with pytest.raises(Problem) as info:
        update_contact(merged, UpdateContact("c1", {"name": "X", "phone": "1"}, 1), NOW)
    assert info.value.code == Error.CONFLICT
    assert info.value.details == {"current": merged.entity, "fields": ["name"]}
    with pytest.raises(Problem) as info:
        update_contact(c, UpdateContact("c1", {"id": "x"}), NOW)
    assert info.value.code == Error.VALIDATION_FAILED


def test_plan_assigns_seqs_only_to_what_succeeds() -> None:
    requests = [
        Request(ALICE, CreateContact("A"), "r1"),
        Request(ALICE, DeleteContact("missing"), "r2"),
        Request(BOB, UpdateContact("c1", {"name": "B"}), None),
        Request(BOB, UpdateContact("c1", {"name": "C"}, 1), None),  # stale on name: conflict
        Request(BOB, AddNote("c1", "hi"), "n1"),
    ]
    out = plan(WS, 10, requests, {"c1": stored()}, {}, NOW, ids())
    created, missing, updated, conflict, note = out.results
    assert isinstance(created, Committed) and created.seq == 11
    assert isinstance(missing, Problem) and missing.code == Error.NOT_FOUND
    assert isinstance(updated, Committed) and updated.seq == 12
    assert updated.entity["version"] == 2
    assert isinstance(conflict, Problem) and conflict.code == Error.CONFLICT
    assert isinstance(note, Committed) and note.seq == 13
    assert out.head == 13
    assert [e.seq for e in out.events] == [11, 12, 13]
    assert [e.type for e in out.events] == ["contact_created", "contact_updated", "note_added"]
    assert out.events[1].data == {**updated.entity, "changed": ["name"]}
    assert all(e.ts == NOW and e.workspace_id == WS for e in out.events)
    assert len({e.event_id for e in out.events}) == 3
    # final states only: the new contact inserted, c1 updated once
    assert {cid: c.stored for cid, c in out.contacts.items()} == {
        created.entity["id"]: False, "c1": True,
    }
    assert out.contacts["c1"].entity["name"] == "B"
    assert [n["body"] for n in out.notes] == ["hi"]
    assert [(u, r, s) for u, r, s, _ in out.refs] == [("alice", "r1", 11), ("bob", "n1", 13)]


def test_refs_known_or_earlier_in_the_batch_answer_again_without_a_seq() -> None:
    first = Committed(3, {"id": "old"}, None)
    requests = [
        Request(ALICE, CreateContact("A"), "known"),
        Request(ALICE, CreateContact("B"), "new"),
        Request(ALICE, DeleteContact("whatever"), "new"),  # a retry, whatever it says
        Request(BOB, CreateContact("C"), "new"),  # another user's ref is another mutation
    ]
    out = plan(WS, 5, requests, {}, {("alice", "known"): first}, NOW, ids())
    known, new, again, bobs = out.results
    assert known == first
    assert isinstance(new, Committed) and new.seq == 6 and new.event is not None
    assert again == Committed(6, new.entity, None)
    assert isinstance(bobs, Committed) and bobs.seq == 7
    assert out.head == 7 and len(out.events) == 2


def test_a_failed_ref_is_not_used_up_in_the_batch() -> None:
    requests = [
        Request(ALICE, DeleteContact("missing"), "r"),
        Request(ALICE, CreateContact("A"), "r"),
    ]
    failed, ok = plan(WS, 0, requests, {}, {}, NOW, ids()).results
    assert isinstance(failed, Problem)
    assert isinstance(ok, Committed) and ok.seq == 1 and ok.event is not None


def test_later_mutations_see_earlier_ones() -> None:
    requests = [
        Request(ALICE, UpdateContact("c1", {"name": "B"}), None),
        Request(ALICE, UpdateContact("c1", {"email": "b@x.org"}, 2), None),
        Request(ALICE, DeleteContact("c1"), None),
        Request(ALICE, AddNote("c1", "late"), None),
        Request(ALICE, UpdateContact("c1", {"name": "C"}), None),
    ]
    out = plan(WS, 0, requests, {"c1": stored()}, {}, NOW, ids())
    first, second, deleted, note, update = out.results
    assert isinstance(first, Committed) and first.entity["version"] == 2
    assert isinstance(second, Committed) and second.entity["version"] == 3
    assert second.entity["name"] == "B"
    assert isinstance(deleted, Committed) and deleted.entity["version"] == 4
    assert isinstance(note, Problem) and note.code == Error.NOT_FOUND
    assert isinstance(update, Problem) and update.code == Error.NOT_FOUND
    final = out.contacts["c1"]
    assert final.stored and final.deleted_at == NOW and final.entity["version"] == 4
    assert out.head == 3 and out.notes == []


def test_validation_comes_before_not_found() -> None:
    [problem] = plan(WS, 0, [Request(ALICE, UpdateContact("nope", {"bad": 1}), None)], {}, {},
                     NOW, ids()).results
    assert isinstance(problem, Problem) and problem.code == Error.VALIDATION_FAILED


def test_referenced_contacts_each_once_in_order() -> None:
    requests = [Request(ALICE, m, None) for m in (
        CreateContact("x"), AddNote("b", "n"), UpdateContact("a", {}), DeleteContact("b"),
    )]
    assert referenced_contacts(requests) == ["b", "a"]


def test_unexpected_errors_are_not_swallowed() -> None:
    def broken() -> str:
        raise RuntimeError("no ids today")

    with pytest.raises(RuntimeError):
        plan(WS, 0, [Request(ALICE, CreateContact("x"), None)], {}, {}, NOW, broken)


def test_new_ids_increase_within_a_process() -> None:
    from livespace.store.batch import new_id

    made = [new_id() for _ in range(2000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(len(i) == 32 and int(i, 16) for i in made)
