/** Snapshot then live under concurrent writers; conflicts surfaced; a stale epoch resyncs. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ConflictError, type Conflict, type DurableEvent, type LivespaceClient } from "../../src/index.js";
import { Proxy } from "./proxy.js";
import { Server, closeClients, openClient, until } from "./server.js";

let server: Server;
let proxy: Proxy;

before(async () => {
  server = await new Server().start();
  proxy = await new Proxy(() => server.port).start();
});

after(async () => {
  closeClients();
  await proxy.stop();
  await server.stop();
});

function client(workspace: string, user: string, extra: Record<string, unknown> = {}): LivespaceClient {
  return openClient({
    url: server.url, workspace, token: () => server.token(user),
    minReconnectDelay: 100, maxReconnectDelay: 800, ...extra,
  });
}

test("the snapshot is consistent under concurrent writers: each contact's first live event is listed + 1", async () => {
  const ws = await server.workspace("alice", "bob");
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) {
    ids.push((await server.api("bob", "POST", `/api/workspaces/${ws}/contacts`, { name: `c${i}` })).id);
  }
  const writer = client(ws, "bob");
  await writer.connect();
  let writing = true;
  let k = 0;
  const load = (async () => {
    while (writing) await Promise.all(ids.map((id) => writer.updateContact(id, { phone: String(k++) })));
  })();
  try {
    for (let round = 0; round < 4; round++) {
      let listed: { contacts: Array<{ id: string; version: number }>; seq: number } | undefined;
      const capture: typeof fetch = async (input, init) => {
        const response = await fetch(input, init);
        if (String(input).includes("/contacts?")) listed = (await response.clone().json()) as typeof listed;
        return response;
      };
      const reader = client(ws, "alice", { fetch: capture });
      const first = new Map<string, DurableEvent>();
      reader.on("event", (e) => {
        const id = e.data.id as string;
        if (!first.has(id)) first.set(id, e);
      });
      await reader.connect();
      await until(() => first.size === ids.length, "a live event for every contact");
      assert.ok(listed, "the list was read");
      assert.equal(listed.contacts.length, ids.length);
      for (const contact of listed.contacts) {
        const event = first.get(contact.id)!;
        assert.ok(event.seq > listed.seq, "no event at or below the list's seq");
        assert.equal(event.data.version, contact.version + 1, `contact ${contact.id}: listed v${contact.version}`);
      }
      reader.close();
    }
  } finally {
    writing = false;
    await load;
  }
});

test("a conflict is surfaced with the current contact and both values, live and from the offline queue", async () => {
  const ws = await server.workspace("alice", "bob");
  const alice = client(ws, "alice", { url: proxy.url });
  const bob = client(ws, "bob");
  await Promise.all([alice.connect(), bob.connect()]);
  const conflicts: Conflict[] = [];
  alice.on("conflict", (c) => conflicts.push(c));
  const c = await alice.createContact({ name: "Ada", phone: "1" });
  await until(() => bob.contacts.has(c.id), "the contact at bob");
  await bob.updateContact(c.id, { name: "Ada L." }, { baseVersion: c.version });

  const refused = await alice.updateContact(c.id, { name: "Ada K." }, { baseVersion: c.version }).catch((e: unknown) => e);
  assert.ok(refused instanceof ConflictError, String(refused));
  assert.equal(refused.code, "conflict");
  assert.deepEqual(refused.conflict.fields, ["name"]);
  assert.deepEqual(refused.conflict.yours, { name: "Ada K." });
  assert.deepEqual(refused.conflict.theirs, { name: "Ada L." });
  assert.equal(refused.conflict.current?.version, c.version + 1);
  assert.equal(alice.contacts.get(c.id)?.name, "Ada L.", "the current contact is applied");
  assert.equal(conflicts.length, 1);
  assert.equal(alice.getSnapshot().conflicts.length, 1);

  // an edit made offline against a version that moves on meanwhile
  proxy.refuse(true);
  await until(() => alice.status === "offline", "alice offline");
  const stale = alice.contacts.get(c.id)!.version;
  const queued = alice.updateContact(c.id, { phone: "2" , name: "Ada Q." }, { baseVersion: stale }).catch((e: unknown) => e);
  await bob.updateContact(c.id, { name: "Ada B." }, { baseVersion: stale });
  proxy.refuse(false);
  const second = await queued;
  assert.ok(second instanceof ConflictError);
  assert.deepEqual(second.conflict.theirs, { name: "Ada B." });
  assert.equal(conflicts.length, 2);
  alice.dismissConflict(conflicts[0]!.ref);
  assert.deepEqual(alice.getSnapshot().conflicts.map((x) => x.ref), [conflicts[1]!.ref]);
  // a non-clashing field with a stale base version is merged by the server, not a conflict
  const merged = await alice.updateContact(c.id, { company: "Analytical" }, { baseVersion: stale });
  assert.equal(merged.company, "Analytical");
});

test("a stale epoch (a restored or renewed log) reloads the snapshot", async () => {
  const ws = await server.workspace("alice", "bob");
  await server.api("bob", "POST", `/api/workspaces/${ws}/contacts`, { name: "one" });
  const reader = client(ws, "alice", { url: proxy.url });
  const resyncs: Array<{ epoch: string | undefined }> = [];
  reader.on("resync", (r) => resyncs.push(r));
  await reader.connect();
  const before = reader.epoch;
  assert.ok(before, "the list carries an epoch");
  proxy.refuse(true);
  await until(() => reader.status === "offline", "offline");
  await server.cli("epoch", "renew", "--workspace", ws);
  await server.api("bob", "POST", `/api/workspaces/${ws}/contacts`, { name: "two" });
  proxy.refuse(false);
  await until(() => resyncs.length === 1 && reader.status === "live", "a resync, then live");
  assert.notEqual(reader.epoch, before, "the new epoch");
  assert.deepEqual([...reader.contacts.values()].map((c) => c.name).sort(), ["one", "two"]);
  await server.api("bob", "POST", `/api/workspaces/${ws}/contacts`, { name: "three" });
  await until(() => reader.contacts.size === 3, "live in the new epoch");
});

test("far behind, the client catches up compacted: each changed contact once, as its latest", async () => {
  const ws = await server.workspace("alice", "bob");
  const ids: string[] = [];
  for (const name of ["a", "b", "c"]) ids.push((await server.api("bob", "POST", `/api/workspaces/${ws}/contacts`, { name })).id);
  const reader = client(ws, "alice", { url: proxy.url, compactThreshold: 20 });
  const replays: unknown[] = [];
  reader.on("welcome", (w) => replays.push(w.replay));
  await reader.connect();
  proxy.refuse(true);
  await until(() => reader.status === "offline", "offline");
  const writer = client(ws, "bob");
  await writer.connect();
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < 10; i++) for (const id of ids) writes.push(writer.updateContact(id, { phone: String(i) }));
  writes.push(writer.addNote(ids[0]!, "a note"));
  await Promise.all(writes);
  const seen: DurableEvent[] = [];
  reader.on("event", (e) => seen.push(e));
  proxy.refuse(false);
  await until(() => reader.status === "live", "live again");
  assert.equal((replays[1] as { count: number }).count, 31, "first told how far behind");
  assert.equal((replays[2] as { compacted?: boolean }).compacted, true, "then reopened compacted");
  assert.deepEqual(seen.map((e) => e.type).sort(), ["contact_updated", "contact_updated", "contact_updated", "note_added"]);
  for (const e of seen.filter((x) => x.type === "contact_updated")) assert.equal(e.data.phone, "9");
  const listed = await server.contacts("alice", ws);
  assert.deepEqual(listed.map((c) => [c.id, c.version]).sort(), [...reader.contacts.values()].map((c) => [c.id, c.version]).sort());
  await writer.updateContact(ids[1]!, { phone: "live" });
  await until(() => reader.contacts.get(ids[1]!)?.phone === "live", "live events after the compacted replay");
  assert.equal(seen.length, 5);
});
