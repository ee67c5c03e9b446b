/**
 * How many durable events per second the SDK applies in Node: real frames through a real
 * socket (Node's WebSocket) from a feeder process (bench/feeder.ts), each event parsed,
 * deduplicated, upserted into `contacts` and handed to an `on("event")` handler.
 *
 *   npm run bench                 (BENCH_EVENTS=100000 BENCH_RUNS=3 by default)
 *   flock /tmp/livespace-bench.lock taskset -c 0 npm run bench
 *
 * Baseline in the same invocation: a bare WebSocket that only JSON.parses the messages.
 * Each case is timed from its first event to its last; medians of BENCH_RUNS runs.
 */

import { spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { LivespaceClient } from "../src/index.js";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONTACTS = 1000;
const here = dirname(fileURLToPath(import.meta.url));
const pin = spawnSync("taskset", ["-V"]).status === 0;
const feeder = spawn(pin ? "taskset" : process.execPath, [...(pin ? ["-c", "1", process.execPath] : []), join(here, "feeder.js")], {
  stdio: ["pipe", "pipe", "inherit"],
});
const lines = createInterface({ input: feeder.stdout! });
const waiting: ((line: string) => void)[] = [];
lines.on("line", (line) => waiting.shift()?.(line));
const nextLine = () => new Promise<string>((r) => waiting.push(r));
const port = Number((await nextLine()).split(" ")[1]);
const url = `http://127.0.0.1:${port}`;
// a token the SDK can read an `exp` from (the feeder checks nothing)
const token = `x.${Buffer.from(JSON.stringify({ sub: "reader", exp: 4102444800 })).toString("base64url")}.x`;

function feed(batch: number): void {
  feeder.stdin!.write(JSON.stringify({ count: EVENTS, contacts: CONTACTS, batch }) + "\n");
  void nextLine();
}

/** Bare WebSocket + JSON.parse: events/s. */
async function bare(batch: number): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/workspace/bench`, ["livespace.v1"]);
  let seen = -1; // the welcome first
  let start = 0;
  const done = new Promise<number>((resolve) => {
    ws.onmessage = (ev) => {
      const parsed = JSON.parse(ev.data as string) as unknown;
      if (seen === 0) start = performance.now();
      seen += Array.isArray(parsed) ? parsed.length : 1;
      if (seen === EVENTS) resolve(performance.now() - start);
    };
  });
  await new Promise((r) => (ws.onopen = r));
  feed(batch);
  const ms = await done;
  ws.close();
  return (EVENTS / ms) * 1000;
}

/** The SDK: events/s, optionally with a React-like subscriber reading getSnapshot(). */
async function sdk(batch: number, ui: boolean): Promise<number> {
  const client = new LivespaceClient({ url, workspace: "bench", token });
  await client.connect();
  const target = client.seq + EVENTS;
  let start = 0;
  let snapshots = 0;
  if (ui) client.subscribe(() => void (client.getSnapshot() && snapshots++));
  const done = new Promise<number>((resolve) => {
    client.on("event", (e) => {
      if (!start) start = performance.now();
      if (e.seq === target) resolve(performance.now() - start);
    });
  });
  feed(batch);
  const ms = await done;
  if (client.contacts.size !== CONTACTS) throw new Error(`expected ${CONTACTS} contacts, have ${client.contacts.size}`);
  client.close();
  return (EVENTS / ms) * 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: Record<string, number> = {};
for (const batch of [1, 100]) {
  for (const [name, fn] of [
    ["bare WebSocket + JSON.parse", () => bare(batch)],
    ["LivespaceClient", () => sdk(batch, false)],
    ["LivespaceClient + getSnapshot subscriber", () => sdk(batch, true)],
  ] as const) {
    const runs: number[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(await fn());
    results[`${name}, ${batch === 1 ? "one frame per message" : `${batch} frames per message`}`] = median(runs);
  }
}
console.log(`events applied per second (median of ${RUNS} runs of ${EVENTS} events over ${CONTACTS} contacts, Node ${process.version}${pin ? ", feeder on cpu 1" : ""})`);
for (const [name, rate] of Object.entries(results)) console.log(`  ${Math.round(rate).toLocaleString("en-US").padStart(10)}  ${name}`);
for (const frames of ["one frame per message", "100 frames per message"]) {
  const base = results[`bare WebSocket + JSON.parse, ${frames}`]!;
  const mine = results[`LivespaceClient, ${frames}`]!;
  console.log(`  SDK / bare, ${frames}: ${(mine / base).toFixed(2)}`);
}
feeder.stdin!.end();
