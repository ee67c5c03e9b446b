/** The replica: dedupe by seq, upserts by version, presence and typing. No sockets. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { Replica, TYPING_TTL_MS } from "../../src/replica.js";
import type { Contact, DurableEvent } from "../../src/types.js";

const contact = (id: string, version: number, extra: Record<string, unknown> = {}): Contact => ({ id, version, name: id, ...extra });
const event = (seq: number, type: DurableEvent["type"], data: Record<string, unknown>): DurableEvent => ({ type, seq, data });

test("events at or below the position are duplicates; strict mode reports a gap", () => {
  const r = new Replica();
  r.loadSnapshot([contact("a", 1)], 10, "e1");
  assert.equal(r.applyEvent(event(10, "contact_updated", contact("a", 2)), true), "duplicate");
  assert.equal(r.contacts.get("a")?.version, 1);
  assert.equal(r.applyEvent(event(12, "contact_updated", contact("a", 2)), true), "gap");
  assert.equal(r.seq, 10, "a gap is not applied");
  assert.equal(r.applyEvent(event(11, "contact_updated", contact("a", 2)), true), "applied");
  assert.equal(r.applyEvent(event(15, "note_added", { id: "n", contact_id: "a" }), false), "applied", "compacted: seqs jump");
  assert.equal(r.seq, 15);
  assert.equal(r.applyEvent(event(14, "contact_updated", contact("a", 9)), false), "duplicate");
});

test("contact events are upserts keeping the highest version; deletes leave a tombstone", () => {
  const r = new Replica();
  r.loadSnapshot([contact("a", 3)], 5, undefined);
  assert.equal(r.upsert(contact("a", 2, { name: "old" })), false, "older version ignored");
  assert.equal(r.upsert(contact("a", 3, { name: "same" })), false, "same version ignored");
  assert.equal(r.upsert(contact("a", 4, { name: "new", changed: ["name"] })), true);
  assert.equal(r.contacts.get("a")?.name, "new");
  assert.equal("changed" in r.contacts.get("a")!, false, "the event's `changed` is not part of the contact");
  assert.ok(Object.isFrozen(r.contacts.get("a")));
  assert.equal(r.upsert(contact("a", 5, { deleted: true })), true);
  assert.equal(r.contacts.has("a"), false);
  assert.equal(r.upsert(contact("a", 4, { name: "zombie" })), false, "no resurrection by a stale event");
  assert.equal(r.contacts.has("a"), false);
  assert.equal(r.upsert({ id: "b" } as unknown as Contact), false, "no version: ignored");
});

test("a snapshot replaces what was known", () => {
  const r = new Replica();
  r.loadSnapshot([contact("a", 1), contact("b", 1)], 3, "e1");
  r.loadSnapshot([contact("b", 2)], 7, "e2");
  assert.deepEqual([...r.contacts.keys()], ["b"]);
  assert.equal(r.seq, 7);
  assert.equal(r.epoch, "e2");
});

test("presence: welcome, join, update, leave and coalesced diffs", () => {
  const r = new Replica();
  r.resetPresence([{ id: "me", name: "Me" }]);
  r.applyPresence({ type: "presence", event: "join", user: { id: "bob", status: "online" } });
  r.applyPresence({ type: "presence", event: "update", user: { id: "bob", status: "away" } });
  assert.equal(r.presence.get("bob")?.status, "away");
  r.applyPresence({ type: "presence", event: "diff", joins: [{ id: "c" }, { id: "d" }], leaves: [{ id: "bob" }], updates: [{ id: "c", status: "busy" }] });
  assert.deepEqual([...r.presence.keys()].sort(), ["c", "d", "me"]);
  assert.equal(r.presence.get("c")?.status, "busy");
  r.applyPresence({ type: "presence", event: "leave", user: { id: "d" } });
  assert.equal(r.presence.has("d"), false);
  r.addPresence([{ id: "c", status: "online" }, { id: "e" }]);
  assert.equal(r.presence.get("c")?.status, "busy", "the rest of a truncated list does not override");
  assert.ok(r.presence.has("e"));
});

test("typing expires by itself when not renewed", () => {
  const r = new Replica();
  r.applyTyping({ type: "typing", user_id: "bob", contact_id: "a", is_typing: true }, 1000);
  r.applyTyping({ type: "typing", user_id: "eve", contact_id: "a", is_typing: true }, 3000);
  assert.deepEqual(r.typingLists().get("a"), ["bob", "eve"]);
  assert.equal(r.nextTypingExpiry(), 1000 + TYPING_TTL_MS);
  assert.equal(r.expireTyping(1000 + TYPING_TTL_MS), true);
  assert.deepEqual(r.typingLists().get("a"), ["eve"]);
  assert.equal(r.applyTyping({ type: "typing", user_id: "eve", contact_id: "a", is_typing: false }, 4000), true);
  assert.equal(r.typingLists().size, 0);
  assert.equal(r.nextTypingExpiry(), undefined);
});
