/** Backoff, close codes, tokens and the outbox with its storages. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { IDBFactory } from "fake-indexeddb";
import "fake-indexeddb/auto";

import { promptDelay, reconnectDelay } from "../../src/backoff.js";
import { closeAction } from "../../src/codes.js";
import { IndexedDBStorage } from "../../src/idb.js";
import { MemoryStorage, Outbox, type OutboxStorage } from "../../src/outbox.js";
import { refreshDelay, tokenExpiry, tokenUser } from "../../src/token.js";

function jwt(claims: Record<string, unknown>): string {
  return `x.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;
}

test("reconnect delays grow exponentially with jitter, within [step/2, step], capped", () => {
  const options = { minReconnectDelay: 100, maxReconnectDelay: 5000 };
  for (let attempt = 0; attempt < 12; attempt++) {
    const step = Math.min(5000, 100 * 2 ** attempt);
    for (const r of [0, 0.3, 0.999]) {
      const d = reconnectDelay(attempt, options, () => r);
      assert.ok(d >= step / 2 && d <= step, `attempt ${attempt}: ${d}`);
    }
  }
  assert.equal(reconnectDelay(0, {}, () => 0), 250, "defaults: 500 ms first step");
  assert.equal(reconnectDelay(50, {}, () => 1), 20_000, "defaults: 20 s cap");
  assert.ok(promptDelay({}, () => 0.99) < 500);
});

test("close codes map to stop, prompt, token or backoff", () => {
  assert.equal(closeAction(4001), "stop");
  assert.equal(closeAction(4003), "stop");
  assert.equal(closeAction(4010), "token");
  assert.equal(closeAction(4009), "prompt");
  assert.equal(closeAction(1012), "prompt");
  assert.equal(closeAction(4008), "backoff");
  assert.equal(closeAction(1006), "backoff");
  assert.equal(closeAction(1000), "backoff");
});

test("tokens: exp and user read from the JWT; refreshed lead ms early, at most half-way", () => {
  const now = 1_000_000_000_000;
  const exp = now / 1000 + 3600;
  const token = jwt({ sub: "alice", exp });
  assert.equal(tokenExpiry(token), exp);
  assert.equal(tokenUser(token), "alice");
  assert.equal(tokenUser(jwt({ user_id: 7, sub: "x" })), "7");
  assert.equal(refreshDelay(token, now, 30_000), 3600_000 - 30_000);
  assert.equal(refreshDelay(jwt({ exp: now / 1000 + 10 }), now, 30_000), 5_000, "a 10 s token: after 5 s");
  assert.equal(refreshDelay(jwt({ exp: now / 1000 - 10 }), now, 30_000), 0, "already expired: now");
  assert.equal(refreshDelay("not-a-jwt", now, 30_000), undefined);
  assert.equal(tokenExpiry(jwt({ exp: "soon" })), undefined);
});

async function outboxContract(make: () => OutboxStorage): Promise<void> {
  const storage = make();
  const box = new Outbox(storage);
  await box.restore("scope-a");
  const [first, p1] = box.add("contact_created", { name: "a" });
  const [second, p2] = box.add("contact_updated", { id: "x", changes: { name: "b" } });
  assert.deepEqual(box.takeUnsent().map((i) => i.ref), [first.ref, second.ref]);
  assert.deepEqual(box.takeUnsent(), [], "sent once per socket");
  box.resetSent();
  assert.deepEqual(box.takeUnsent().map((i) => i.ref), [first.ref, second.ref], "all again on a new socket");
  await new Promise((r) => setTimeout(r, 20));
  // a new session on the same storage finds both, in order, and keeps its own after them
  const reloaded = new Outbox(storage);
  const [third] = reloaded.add("contact_deleted", { id: "y" });
  await reloaded.restore("scope-a");
  assert.deepEqual(reloaded.pending.map((i) => i.ref), [first.ref, second.ref, third.ref]);
  const other = new Outbox(storage);
  await other.restore("scope-b");
  assert.deepEqual(other.pending, [], "scopes are apart");
  box.settle(first.ref, { ack: { type: "ack", ref: first.ref, seq: 1 } });
  assert.equal((await p1).seq, 1);
  box.settle(second.ref, { error: new Error("nope") });
  await assert.rejects(p2, /nope/);
  await new Promise((r) => setTimeout(r, 20));
  const left = await storage.load("scope-a");
  assert.deepEqual(left.map((i) => i.ref).sort(), [third.ref].sort(), "settled items leave the storage");
  assert.equal(box.settle("unknown", { error: new Error("x") }), undefined);
}

test("outbox on memory storage: order, once per socket, restore, settle", () => outboxContract(() => new MemoryStorage()));

test("outbox on IndexedDB storage: the same, and it survives a new database handle", async () => {
  const factory = new IDBFactory();
  await outboxContract(() => new IndexedDBStorage(factory, "t1"));
  const a = new IndexedDBStorage(factory, "t2");
  await a.put("s", { ref: "r2", type: "contact_created", data: { name: "2" }, createdAt: 2 });
  await a.put("s", { ref: "r1", type: "contact_created", data: { name: "1" }, createdAt: 1 });
  const b = new IndexedDBStorage(factory, "t2");
  assert.deepEqual((await b.load("s")).map((i) => i.ref), ["r1", "r2"], "oldest first");
  await b.delete("s", "r1");
  assert.deepEqual((await a.load("s")).map((i) => i.ref), ["r2"]);
  assert.equal(IndexedDBStorage.available(), true, "fake-indexeddb/auto installs the global");
});
