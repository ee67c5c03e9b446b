/**
 * The network and the server fail under the client: kills, drains, cut and silent sockets,
 * expiring tokens, a retention gap. What the application sees must stay exact.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { IDBFactory } from "fake-indexeddb";

import { IndexedDBStorage, type LivespaceClient, type DurableEvent } from "../../src/index.js";
import { Proxy } from "./proxy.js";
import { Server, closeClients, openClient, sleep, until } from "./server.js";

let server: Server;
let proxy: Proxy;

before(async () => {
  server = await new Server({ LIVESPACE_HEARTBEAT_S: "1" }).start();
  proxy = await new Proxy(() => server.port).start();
});

after(async () => {
  closeClients();
  await proxy.stop();
  await server.stop();
});

const fast = { minReconnectDelay: 100, maxReconnectDelay: 800 };

function client(workspace: string, user: string, via: "proxy" | "direct" = "direct", extra: Record<string, unknown> = {}): LivespaceClient {
  return openClient({
    url: via === "proxy" ? proxy.url : server.url,
    workspace,
    token: () => server.token(user),
    ...fast,
    ...extra,
  });
}

/** Every durable event `c` hands the application, in the order it does. */
function record(c: LivespaceClient): DurableEvent[] {
  const seen: DurableEvent[] = [];
  c.on("event", (e) => seen.push(e));
  return seen;
}

async function head(workspace: string): Promise<number> {
  const r = await fetch(`${server.url}/api/workspaces/${workspace}/events?since=0&limit=1`, {
    headers: { Authorization: `Bearer ${server.token("alice")}` },
  });
  const body = (await r.json()) as { head_seq?: number; error?: { details?: { head_seq?: number } } };
  return (body.head_seq ?? body.error?.details?.head_seq)!; // 410 past retention, with the head
}

test("every durable event reaches the application once, in order, through kills, drains and cut sockets", async () => {
  const ws = await server.workspace("alice", "bob");
  for (let i = 0; i < 3; i++) await server.api("alice", "POST", `/api/workspaces/${ws}/contacts`, { name: `seed-${i}` });
  const reader = client(ws, "alice", "proxy");
  const seen = record(reader);
  await reader.connect();
  const start = reader.seq;
  const writer = client(ws, "bob");
  await writer.connect();
  const acks: Promise<unknown>[] = [];
  let n = 0;
  const burst = (count: number) => {
    for (let i = 0; i < count; i++) acks.push(writer.createContact({ name: `w-${n++}` }));
  };

  burst(10);
  await sleep(50);
  proxy.cut(); // the reader's socket is reset mid-stream
  burst(10);
  await until(() => reader.status === "live" && reader.seq >= start + 15, "the reader back after a cut");

  burst(5);
  await server.stop("SIGKILL"); // a crash: nobody is told
  burst(10); // made while the server is down: queued by the writer
  assert.equal(writer.getSnapshot().pending.length > 0, true);
  await server.start();
  await until(() => writer.getSnapshot().pending.length === 0, "the writer's queue sent after the crash");

  burst(5);
  await server.restart("SIGTERM"); // a deploy: sockets closed with 1012
  burst(10);
  await until(() => writer.getSnapshot().pending.length === 0, "the writer's queue sent after the drain");

  proxy.hold(); // the reader's socket goes silent: only the heartbeat notices
  burst(5);
  await Promise.all(acks);
  const last = await head(ws);
  await until(() => reader.status === "live" && reader.seq === last, "the reader caught up", 30_000);

  const log = (await server.events("alice", ws)).filter((e) => e.seq > start);
  assert.deepEqual(seen.map((e) => e.seq), log.map((e) => e.seq), "each event once, in seq order");
  const names = log.filter((e) => e.type === "contact_created").map((e) => e.data.name as string);
  assert.equal(names.length, n, "each mutation applied once");
  assert.equal(new Set(names).size, n);
  assert.equal(reader.contacts.size, 3 + n);
});

test("a token about to expire is refreshed on the open socket, without a reconnect", async () => {
  const ws = await server.workspace("alice", "carol");
  let calls = 0;
  const refreshed = client(ws, "alice", "direct", { token: () => (calls++, server.token("alice", 2)) });
  const statuses: string[] = [];
  let welcomes = 0;
  let refreshes = 0;
  refreshed.on("status", (s) => statuses.push(s.status));
  refreshed.on("welcome", () => welcomes++);
  refreshed.on("refresh", () => refreshes++);
  // the same user with a fixed short token: the server closes it with 4010, and it stops
  const fixed = client(ws, "carol", "direct", { token: server.token("carol", 2) });
  await Promise.all([refreshed.connect(), fixed.connect()]);
  await sleep(4_000); // two lifetimes of its tokens
  assert.equal(refreshed.status, "live");
  assert.deepEqual(statuses, ["connecting", "live"], "never left live");
  assert.equal(welcomes, 1, "one connection all along");
  assert.ok(refreshes >= 2, `refreshed ${refreshes} times`);
  assert.ok(calls >= 3, "token function called at connect and before each exp");
  const contact = await refreshed.createContact({ name: "after the first exp" });
  assert.equal(contact.name, "after the first exp");
  await until(() => fixed.status === "closed", "the fixed-token client stopped");
  assert.equal(fixed.getSnapshot().error?.code, "unauthorized");
});

test("a retention gap reloads the snapshot (resync), and the client goes on live", async () => {
  const ws = await server.workspace("alice", "bob");
  const reader = client(ws, "alice", "proxy");
  const resyncs: unknown[] = [];
  reader.on("resync", (r) => resyncs.push(r));
  await reader.connect();
  await server.api("bob", "POST", `/api/workspaces/${ws}/contacts`, { name: "before" });
  await until(() => reader.contacts.size === 1, "the first contact");
  proxy.refuse(true);
  await until(() => reader.status === "offline", "the reader offline");
  for (const name of ["gone-1", "gone-2", "gone-3"]) {
    await server.api("bob", "POST", `/api/workspaces/${ws}/contacts`, { name });
  }
  await server.cli("cleanup", "--retention-days", "0"); // the events the reader missed are gone
  proxy.refuse(false);
  await until(() => resyncs.length === 1 && reader.status === "live", "a resync, then live");
  const listed = (await server.contacts("bob", ws)).map((c) => c.name).sort();
  assert.deepEqual([...reader.contacts.values()].map((c) => c.name).sort(), listed);
  await server.api("bob", "POST", `/api/workspaces/${ws}/contacts`, { name: "after" });
  await until(() => [...reader.contacts.values()].some((c) => c.name === "after"), "live after the resync");
  assert.equal(reader.seq, await head(ws));
});

test("mutations made offline are applied once after reconnect, in order, with their promises settled", async () => {
  const ws = await server.workspace("alice");
  const alice = client(ws, "alice", "proxy");
  await alice.connect();
  const c = await alice.createContact({ name: "v1" });
  proxy.refuse(true);
  await until(() => alice.status === "offline", "offline");
  const updates = [2, 3, 4].map((v) => alice.updateContact(c.id, { name: `v${v}` }));
  assert.equal(alice.getSnapshot().pending.length, 3);
  await sleep(300);
  proxy.refuse(false);
  const results = await Promise.all(updates);
  assert.deepEqual(results.map((r) => r.name), ["v2", "v3", "v4"]);
  assert.deepEqual(results.map((r) => r.version), [2, 3, 4]);
  await until(() => alice.contacts.get(c.id)?.name === "v4", "the last one applied");
  const log = (await server.events("alice", ws)).filter((e) => e.type === "contact_updated");
  assert.deepEqual(log.map((e) => e.data.name), ["v2", "v3", "v4"]);
});

test("the offline queue survives a reload (IndexedDB) and is applied once with its original ref", async () => {
  const ws = await server.workspace("alice");
  const storage = new IndexedDBStorage(new IDBFactory());
  proxy.refuse(true);
  const before = client(ws, "alice", "proxy", { storage });
  before.connect().catch(() => {});
  const lost = before.createContact({ name: "made offline" }).catch((e: { code: string }) => e.code);
  const ref = before.getSnapshot().pending[0]!.ref;
  await until(() => before.status === "offline", "offline");
  await sleep(100);
  before.close(); // the tab goes away before the network comes back
  assert.equal(await lost, "closed");
  proxy.refuse(false);

  const after = client(ws, "alice", "proxy", { storage });
  const acks: string[] = [];
  after.on("ack", (a) => acks.push(a.ref ?? ""));
  await after.connect();
  await until(() => after.getSnapshot().pending.length === 0, "the stored mutation sent");
  assert.ok(acks.includes(ref), "sent with the ref it was made with");
  const log = (await server.events("alice", ws)).filter((e) => e.data.name === "made offline");
  assert.equal(log.length, 1);
  assert.deepEqual([...after.contacts.values()].map((c) => c.name), ["made offline"]);
  const third = client(ws, "alice", "proxy", { storage });
  await third.connect();
  assert.equal(third.getSnapshot().pending.length, 0, "nothing left stored once acknowledged");
});
