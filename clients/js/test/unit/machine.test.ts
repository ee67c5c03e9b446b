/** The state machine, fed inputs: no sockets, no timers. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { type Effect, type Input, type MachineState, initialState, statusOf, step } from "../../src/machine.js";

const opts = { random: () => 0.5, minReconnectDelay: 100, maxReconnectDelay: 1000 };

function run(inputs: Input[], state: MachineState = initialState()): [MachineState, Effect[][]] {
  const all: Effect[][] = [];
  for (const input of inputs) {
    const [next, effects] = step(state, input, opts);
    state = next;
    all.push(effects);
  }
  return [state, all];
}

const live: Input[] = [
  { type: "connect" },
  { type: "snapshot_loaded" },
  { type: "welcome", resync: false, behind: 0, compacted: false },
];

test("connect: snapshot, then socket, then live at head", () => {
  const [state, effects] = run(live);
  assert.equal(state.phase, "live");
  assert.equal(statusOf(state.phase), "live");
  assert.deepEqual(effects, [
    [{ do: "load_snapshot" }],
    [{ do: "open_socket", compact: false }],
    [{ do: "went_live" }],
  ]);
  assert.equal(state.needSnapshot, false);
});

test("a replay keeps it connecting until caught up", () => {
  const [state] = run([...live.slice(0, 2), { type: "welcome", resync: false, behind: 5, compacted: false }]);
  assert.equal(state.phase, "replaying");
  assert.equal(statusOf(state.phase), "connecting");
  const [after, effects] = step(state, { type: "caught_up" }, opts);
  assert.equal(after.phase, "live");
  assert.deepEqual(effects, [{ do: "went_live" }]);
});

test("far behind: reopen with a compacted replay, once", () => {
  const [state, effects] = run([...live.slice(0, 2), { type: "welcome", resync: false, behind: 5000, compacted: false }]);
  assert.equal(state.phase, "opening");
  assert.equal(state.compact, true);
  assert.deepEqual(effects.at(-1), [
    { do: "close_socket", code: 4901, reason: "compacted catch-up" },
    { do: "open_socket", compact: true },
  ]);
  const [after] = step(state, { type: "welcome", resync: false, behind: 800, compacted: true }, opts);
  assert.equal(after.phase, "replaying");
});

test("resync_required reloads the snapshot before reconnecting", () => {
  const [state, effects] = run([...live.slice(0, 2), { type: "welcome", resync: true, behind: 0, compacted: false }]);
  assert.equal(state.phase, "snapshot");
  assert.deepEqual(effects.at(-1)?.map((e) => e.do), ["close_socket", "resync", "load_snapshot"]);
  const [after, next] = step(state, { type: "snapshot_loaded" }, opts);
  assert.equal(after.phase, "opening");
  assert.deepEqual(next, [{ do: "open_socket", compact: false }]);
});

test("close codes: 4001/4003 stop, 1012/4009 reconnect promptly, others back off", () => {
  for (const [code, phase] of [[4001, "closed"], [4003, "closed"], [1012, "waiting"], [4009, "waiting"], [4010, "waiting"], [1006, "waiting"]] as const) {
    const [state, effects] = run([...live, { type: "socket_closed", code }]);
    assert.equal(state.phase, phase, `code ${code}`);
    if (phase === "closed") assert.equal(effects.at(-1)?.[0]?.do, "stop");
  }
  const [prompt, e1] = run([...live, { type: "socket_closed", code: 1012 }]);
  assert.deepEqual(e1.at(-1), [{ do: "wait", delay: 50 }], "prompt: [0, min)");
  const [, e2] = run([...live, { type: "socket_closed", code: 1006 }]);
  assert.deepEqual(e2.at(-1), [{ do: "wait", delay: 75 }], "backoff: min/2 + jitter");
  // a retry after a prompt reconnect goes straight to the socket (no snapshot again)
  const [retried, e3] = step(prompt, { type: "retry" }, opts);
  assert.equal(retried.phase, "opening");
  assert.deepEqual(e3, [{ do: "open_socket", compact: false }]);
});

test("repeated failures back off exponentially up to the cap, and live resets it", () => {
  let [state] = run(live);
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    const [closed, effects] = step(state, { type: "socket_closed", code: 1006 }, opts);
    delays.push((effects[0] as { delay: number }).delay);
    [state] = step(closed, { type: "retry" }, opts);
  }
  assert.deepEqual(delays, [75, 150, 300, 600, 750, 750, 750, 750]);
  [state] = step(state, { type: "welcome", resync: false, behind: 0, compacted: false }, opts);
  assert.equal(state.attempt, 0);
});

test("a dead connection is closed and replaced", () => {
  const [state, effects] = run([...live, { type: "dead" }]);
  assert.equal(state.phase, "waiting");
  assert.equal(effects.at(-1)?.[0]?.do, "close_socket");
  assert.equal((effects.at(-1)?.[0] as { code: number }).code, 4900);
});

test("offline waits without a timer; online retries at once", () => {
  const [state, effects] = run([...live, { type: "network", online: false }]);
  assert.equal(state.phase, "waiting");
  assert.deepEqual(effects.at(-1)?.map((e) => e.do), ["cancel_wait", "close_socket", "wait"]);
  assert.deepEqual(effects.at(-1)?.at(-1), { do: "wait", delay: null });
  const [back, next] = step(state, { type: "network", online: true }, opts);
  assert.equal(back.phase, "opening");
  assert.deepEqual(next.map((e) => e.do), ["cancel_wait", "open_socket"]);
  const [idle] = run([{ type: "network", online: false }, { type: "connect" }]);
  assert.equal(idle.phase, "waiting", "connect while offline waits for the network");
});

test("close() is final", () => {
  const [state] = run([...live, { type: "close" }, { type: "retry" }, { type: "connect" }]);
  assert.equal(state.phase, "closed");
  assert.equal(statusOf("idle"), "offline");
});

test("stale inputs are ignored", () => {
  const [state] = run([{ type: "connect" }, { type: "caught_up" }, { type: "welcome", resync: false, behind: 0, compacted: false }]);
  assert.equal(state.phase, "snapshot");
});

test("a fatal input stops from any phase", () => {
  for (const prefix of [live.slice(0, 1), live.slice(0, 2), live]) {
    const [state, effects] = run([...prefix, { type: "fatal", code: "invalid_socket", message: "bad url" }]);
    assert.equal(state.phase, "closed");
    assert.deepEqual(effects.at(-1)?.at(-1), { do: "stop", code: "invalid_socket", message: "bad url" });
  }
});
