/** The snapshot cache, conflicts from error frames, and the connection over a scripted socket. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { Connection, type WebSocketLike } from "../../src/connection.js";
import { conflictOf } from "../../src/errors.js";
import { Replica } from "../../src/replica.js";
import { SnapshotCache, type SnapshotHead } from "../../src/snapshot.js";
import type { Frame } from "../../src/types.js";

const head = (seq: number): SnapshotHead => ({
  status: "live", seq, epoch: "e", user: undefined, pending: [], conflicts: [], error: undefined,
});

test("a snapshot is the same object until a part or a scalar changes; unchanged parts are shared", () => {
  const replica = new Replica();
  const cache = new SnapshotCache(replica);
  const h = head(1);
  const first = cache.get(h);
  assert.equal(cache.get(h), first);
  assert.equal(cache.get({ ...h }), first, "equal scalars: same snapshot");
  replica.upsert({ id: "a", version: 1, name: "A" });
  cache.touch("contacts");
  const second = cache.get(h);
  assert.notEqual(second, first);
  assert.equal(second.presence, first.presence);
  assert.equal(first.contacts.size, 0, "an old snapshot does not move");
  const third = cache.get(head(2));
  assert.notEqual(third, second);
  assert.equal(third.contacts, second.contacts);
  assert.ok(Object.isFrozen(third));
});

test("a conflict names the clashing fields with both values", () => {
  const current = { id: "c", version: 3, name: "Theirs", phone: "1" };
  const conflict = conflictOf("r1", "c", { name: "Mine", company: "X" }, { current, fields: ["name"] });
  assert.deepEqual(conflict.fields, ["name"]);
  assert.deepEqual(conflict.yours, { name: "Mine" });
  assert.deepEqual(conflict.theirs, { name: "Theirs" });
  assert.equal(conflict.current?.version, 3);
  const bare = conflictOf("r2", "c", { name: "Mine" }, undefined);
  assert.deepEqual(bare.fields, ["name"], "no details: the fields it changed");
  assert.equal(bare.current, null);
});

/** A socket the test drives: it records what the client sends. */
class ScriptedSocket implements WebSocketLike {
  static last: ScriptedSocket;
  readyState = 0;
  sent: string[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string, readonly protocols?: string | string[]) {
    ScriptedSocket.last = this;
  }
  send(data: string): void {
    this.sent.push(data);
  }
  close(): void {
    this.readyState = 3;
  }
}

function open(events: Partial<{ frame(f: Frame): void; closed(c: number, r: string): void; dead(r: string): void }> = {}) {
  const seen = { frames: [] as Frame[], closed: [] as number[], dead: [] as string[], flushed: 0 };
  const conn = new Connection(ScriptedSocket, "ws://x/ws/workspace/w", "tok.en.sig", 60_000, {
    frame: (f) => (seen.frames.push(f), events.frame?.(f)),
    flushed: () => void seen.flushed++,
    closed: (c, r) => (seen.closed.push(c), events.closed?.(c, r)),
    dead: (r) => (seen.dead.push(r), events.dead?.(r)),
  });
  return { conn, socket: ScriptedSocket.last, seen };
}

test("the token goes in the subprotocol list; batched messages are split; requests match replies by ref", async () => {
  const { conn, socket, seen } = open();
  assert.deepEqual(socket.protocols, ["livespace.v1", "bearer.tok.en.sig"]);
  socket.readyState = 1;
  socket.onmessage!({ data: JSON.stringify([{ type: "a" }, { type: "b" }]) });
  socket.onmessage!({ data: "not json" });
  assert.deepEqual(seen.frames.map((f) => f.type), ["a", "b"]);
  assert.equal(seen.flushed, 1, "one notification per message");
  const reply = conn.request("presence_update", { status: "away" });
  const ref = (JSON.parse(socket.sent[0]!) as { ref: string }).ref;
  assert.equal(conn.settle(ref, { type: "ack", ref }), true);
  assert.equal((await reply).ref, ref);
  assert.equal(conn.settle("other"), false);
  conn.close(1000, "bye");
});

test("an error before the socket opens ends the attempt (runtimes that send no close event)", () => {
  const { socket, seen } = open();
  socket.onerror!({});
  assert.deepEqual(seen.closed, [1006]);
  socket.onclose?.({ code: 1006, reason: "" });
  assert.deepEqual(seen.closed, [1006], "ended once");
});

test("silence for two heartbeats is reported dead; pings go out meanwhile", async () => {
  const { conn, socket, seen } = open();
  socket.readyState = 1;
  conn.setHeartbeat(100);
  await new Promise((r) => setTimeout(r, 120));
  assert.ok(socket.sent.some((s) => JSON.parse(s).type === "ping"), "a ping after one heartbeat");
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(seen.dead.length >= 1, "dead after two heartbeats of silence");
  conn.close(4900, "dead");
});
