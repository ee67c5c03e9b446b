/** Snapshot then live, against a real server: the surface a page builds on. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import type { LivespaceClient, Snapshot } from "../../src/index.js";
import { Server, closeClients, openClient, until } from "./server.js";

let server: Server;

before(async () => {
  server = await new Server().start();
});

after(async () => {
  closeClients();
  await server.stop();
});

function client(workspace: string, user: string, extra: Record<string, unknown> = {}): LivespaceClient {
  return openClient({ url: server.url, workspace, token: server.token(user), ...extra });
}

test("connect loads the snapshot, goes live, and keeps contacts and presence current", async () => {
  const ws = await server.workspace("alice", "bob");
  await server.api("alice", "POST", `/api/workspaces/${ws}/contacts`, { name: "Ada" });
  const alice = client(ws, "alice");
  const statuses: string[] = [];
  alice.on("status", (s) => statuses.push(s.status));
  assert.equal(alice.status, "offline");
  await alice.connect();
  assert.equal(alice.status, "live");
  assert.deepEqual(statuses, ["connecting", "live"]);
  assert.deepEqual([...alice.contacts.values()].map((c) => c.name), ["Ada"]);
  assert.equal(alice.seq, 1);
  assert.ok(alice.presence.has("alice"));
  assert.equal(alice.user?.id, "alice");

  const bob = client(ws, "bob");
  await bob.connect();
  await until(() => alice.presence.has("bob"), "bob's join");

  const created = await bob.createContact({ name: "Grace", company: "Navy" });
  assert.equal(created.name, "Grace");
  assert.equal(bob.contacts.get(created.id)?.company, "Navy", "the ack's contact is applied at once");
  await until(() => alice.contacts.get(created.id), "Grace at alice");
  const updated = await alice.updateContact(created.id, { phone: "555" }, { baseVersion: created.version });
  assert.equal(updated.version, created.version + 1);
  await until(() => bob.contacts.get(created.id)?.phone === "555", "the update at bob");
  await bob.deleteContact(created.id);
  await until(() => !alice.contacts.has(created.id), "the delete at alice");
  const note = await alice.addNote([...alice.contacts.keys()][0]!, "hello");
  assert.equal(note.body, "hello");
  assert.deepEqual((await bob.notes(note.contact_id)).map((n) => n.body), ["hello"]);
  await until(() => bob.seq === alice.seq && alice.seq === 5, "both at seq 5");

  bob.close();
  assert.equal(bob.status, "closed");
  await until(() => !alice.presence.has("bob"), "bob's leave");
  alice.close();
});

test("getSnapshot is the same object until something changes, and subscribers hear of changes", async () => {
  const ws = await server.workspace("carol");
  const carol = client(ws, "carol");
  let calls = 0;
  const unsubscribe = carol.subscribe(() => calls++);
  await carol.connect();
  await until(() => calls > 0, "a notification");
  const first: Snapshot = carol.getSnapshot();
  assert.equal(carol.getSnapshot(), first, "no change: same object");
  assert.ok(Object.isFrozen(first));
  assert.equal(first.status, "live");

  const seen = calls;
  const contact = await carol.createContact({ name: "Linus" });
  await until(() => carol.getSnapshot().contacts.has(contact.id), "the new contact in the snapshot");
  const second = carol.getSnapshot();
  assert.notEqual(second, first);
  assert.equal(first.contacts.has(contact.id), false, "an old snapshot never changes");
  assert.equal(second.presence, first.presence, "unchanged parts are shared");
  assert.ok(calls > seen);
  assert.equal(carol.getSnapshot(), second);
  unsubscribe();
  carol.close();
});

test("a pending mutation is in the snapshot until its ack", async () => {
  const ws = await server.workspace("dave");
  const dave = client(ws, "dave");
  const promise = dave.createContact({ name: "Queued" });
  assert.equal(dave.getSnapshot().pending.length, 1, "queued before connect");
  assert.equal(dave.getSnapshot().pending[0]?.type, "contact_created");
  await dave.connect();
  const contact = await promise;
  assert.equal(contact.name, "Queued");
  await until(() => dave.getSnapshot().pending.length === 0, "pending cleared");
  dave.close();
});

test("a bad token and a non-member stop with their code", async () => {
  const ws = await server.workspace("erin");
  const stranger = client(ws, "mallory");
  await assert.rejects(stranger.connect(), (e: { code?: string }) => e.code === "forbidden");
  assert.equal(stranger.status, "closed");
  const forged = openClient({ url: server.url, workspace: ws, token: server.token("erin").slice(0, -4) + "AAAA" });
  await assert.rejects(forged.connect(), (e: { code?: string }) => e.code === "unauthorized");
  assert.equal(forged.getSnapshot().error?.code, "unauthorized");
});

test("a mutation error rejects with the server's code", async () => {
  const ws = await server.workspace("frank");
  const frank = client(ws, "frank");
  await frank.connect();
  await assert.rejects(frank.updateContact("nope", { name: "x" }), (e: { code?: string }) => e.code === "not_found");
  await assert.rejects(frank.createContact({ name: "" }), (e: { code?: string }) => e.code === "validation_failed");
  assert.equal(frank.getSnapshot().pending.length, 0);
  frank.close();
});

test("typing, presence and broadcasts (to everyone, to one user) reach the others", async () => {
  const ws = await server.workspace("gina", "hank", "ivy");
  const gina = client(ws, "gina");
  const hank = client(ws, "hank");
  const ivy = client(ws, "ivy");
  await Promise.all([gina.connect(), hank.connect(), ivy.connect()]);
  const contact = await gina.createContact({ name: "Target" });
  await until(() => hank.presence.has("gina") && hank.presence.has("ivy"), "everyone online at hank");

  hank.setTyping(contact.id, true);
  await until(() => gina.getSnapshot().typing.get(contact.id)?.includes("hank"), "hank typing at gina");
  hank.setTyping(contact.id, false);
  await until(() => !gina.getSnapshot().typing.has(contact.id), "hank stopped typing");

  await hank.setPresence({ status: "busy", viewing: contact.id });
  await until(() => gina.presence.get("hank")?.viewing === contact.id, "hank viewing at gina");
  assert.equal(gina.getSnapshot().presence.get("hank")?.status, "busy");

  const atGina: unknown[] = [];
  const atIvy: unknown[] = [];
  gina.on("broadcast", (b) => atGina.push(b.payload));
  ivy.on("broadcast", (b) => atIvy.push(b.payload));
  await hank.broadcast("cursor", { x: 1 });
  await hank.broadcast("offer", { sdp: "v=0" }, { to: "ivy" });
  await until(() => atGina.length === 1 && atIvy.length === 2, "the broadcasts");
  assert.deepEqual(atGina, [{ x: 1 }], "a direct message goes to its user only");
  assert.deepEqual(atIvy, [{ x: 1 }, { sdp: "v=0" }]);
  for (const c of [gina, hank, ivy]) c.close();
  await assert.rejects(hank.broadcast("late", {}), (e: { code?: string }) => e.code === "offline");
});

test("a snapshot read in pages holds every contact, from the first page's position", async () => {
  const ws = await server.workspace("judy");
  for (let i = 0; i < 5; i++) await server.api("judy", "POST", `/api/workspaces/${ws}/contacts`, { name: `p${i}` });
  const pages: string[] = [];
  const judy = client(ws, "judy", {
    pageSize: 2,
    fetch: (input: string, init: RequestInit) => (pages.push(String(input)), fetch(input, init)),
  });
  await judy.connect();
  assert.equal(pages.length, 3, "three pages of at most two");
  assert.deepEqual([...judy.contacts.values()].map((c) => c.name).sort(), ["p0", "p1", "p2", "p3", "p4"]);
  assert.equal(judy.seq, 5);
  judy.close();
});
