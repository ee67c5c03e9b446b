/**
 * The bench's frame source: a small HTTP + WebSocket server in its own process that
 * speaks just enough of livespace for one client: the contact list (`seq` 0), a `welcome`
 * at head, then, when told on stdin, `count` `contact_updated` events over `contacts`
 * contacts as fast as the socket takes them, `batch` frames per WebSocket message (the
 * server's `batch=1` arrays), pre-encoded so that the feeder costs little per event.
 *
 * stdin: one JSON line per run `{"count", "contacts", "batch"}`; stdout: `ready <port>`,
 * then `sent <n>` after each run.
 */

import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { Duplex } from "node:stream";
import { createInterface } from "node:readline";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
let socket: Duplex | undefined;
let seq = 0;

function frame(text: string): Buffer {
  const body = Buffer.from(text);
  const n = body.length;
  const head = n < 126 ? Buffer.from([0x81, n]) : n < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (n >= 126 && n < 65536) {
    head[0] = 0x81;
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else if (n >= 65536) {
    head[0] = 0x81;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, body]);
}

function event(s: number, contacts: number): Record<string, unknown> {
  const id = `c${String(s % contacts).padStart(6, "0")}`;
  return {
    type: "contact_updated", seq: s, event_id: `e${s}`, workspace_id: "bench",
    actor: { id: "writer", name: "Writer" }, ts: "2026-01-01T00:00:00.000Z",
    data: {
      id, version: Math.floor(s / contacts) + 2, name: `Contact ${id}`, email: `${id}@example.com`,
      phone: String(s), company: "Bench Ltd", tags: ["lead"], fields: {}, changed: ["phone"],
    },
  };
}

async function run(count: number, contacts: number, batch: number): Promise<void> {
  const messages: Buffer[] = [];
  for (let i = 0; i < count; i += batch) {
    const frames = [];
    for (let j = i; j < Math.min(count, i + batch); j++) frames.push(event(seq + 1 + j, contacts));
    messages.push(frame(JSON.stringify(batch === 1 ? frames[0] : frames)));
  }
  seq += count;
  const out = socket!;
  for (const message of messages) {
    if (!out.write(message)) await new Promise((r) => out.once("drain", r));
  }
  process.stdout.write(`sent ${count}\n`);
}

const server = createServer((req, res) => {
  if (req.url?.includes("/contacts")) {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ contacts: [], next: null, seq, epoch: "bench" }));
  } else {
    res.writeHead(404).end();
  }
});

server.on("upgrade", (req, sock) => {
  socket?.destroy();
  const key = String(req.headers["sec-websocket-key"]);
  const accept = createHash("sha1").update(key + GUID).digest("base64");
  sock.write(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: livespace.v1\r\n\r\n`,
  );
  sock.on("data", () => {}); // pings and receipts: read and ignored
  sock.on("error", () => {});
  socket = sock;
  const welcome = {
    type: "welcome", session_id: "s", workspace_id: "bench", seq, epoch: "bench",
    user: { id: "reader", name: "Reader", role: "member" }, presence: [], presence_count: 1,
    heartbeat_s: 25, replay: { from_seq: seq + 1, to_seq: seq, count: 0 },
  };
  sock.write(frame(JSON.stringify(welcome)));
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`ready ${(server.address() as { port: number }).port}\n`);
});

createInterface({ input: process.stdin }).on("line", (line) => {
  const { count, contacts, batch } = JSON.parse(line) as { count: number; contacts: number; batch: number };
  void run(count, contacts, batch);
}).on("close", () => process.exit(0));
