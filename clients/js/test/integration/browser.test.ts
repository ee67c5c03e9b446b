/**
 * The browser's `online` / `offline` / `visibilitychange` events, dispatched on stand-in
 * `window` and `document` event targets (this file runs in its own process), with a real
 * server behind a proxy that can silence the socket.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Proxy } from "./proxy.js";
import { Server, closeClients, openClient, sleep, until } from "./server.js";

const win = new EventTarget();
const doc = Object.assign(new EventTarget(), { visibilityState: "visible" });
Object.assign(globalThis, {
  addEventListener: win.addEventListener.bind(win),
  removeEventListener: win.removeEventListener.bind(win),
  document: doc,
});

let server: Server;
let proxy: Proxy;

before(async () => {
  server = await new Server().start(); // heartbeat 25 s: only the events can be quick here
  proxy = await new Proxy(() => server.port).start();
});

after(async () => {
  closeClients();
  await proxy.stop();
  await server.stop();
});

test("offline closes and waits without retrying; online reconnects at once", async () => {
  const ws = await server.workspace("alice");
  const alice = openClient({ url: proxy.url, workspace: ws, token: () => server.token("alice"), minReconnectDelay: 10_000 });
  await alice.connect();
  let welcomes = 0;
  alice.on("welcome", () => welcomes++);
  win.dispatchEvent(new Event("offline"));
  assert.equal(alice.status, "offline");
  const queued = alice.createContact({ name: "while offline" });
  await sleep(500);
  assert.equal(welcomes, 0, "no attempt while offline");
  win.dispatchEvent(new Event("online"));
  await until(() => alice.status === "live", "live again", 5_000);
  assert.equal((await queued).name, "while offline");
  alice.close();
});

test("a page that becomes visible finds out at once that its socket died during the sleep", async () => {
  const ws = await server.workspace("bob");
  const bob = openClient({ url: proxy.url, workspace: ws, token: () => server.token("bob") });
  await bob.connect();
  proxy.hold(); // the socket is silently gone, as after a laptop lid
  const reasons: string[] = [];
  bob.on("status", (s) => reasons.push(s.reason));
  await server.api("bob", "POST", `/api/workspaces/${ws}/contacts`, { name: "during the sleep" });
  doc.dispatchEvent(new Event("visibilitychange"));
  await until(() => bob.contacts.size === 1 && bob.status === "live", "caught up after waking", 10_000);
  assert.match(reasons[0] ?? "", /no answer to a ping/);
  bob.close();
});
