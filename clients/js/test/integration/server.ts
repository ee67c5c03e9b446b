/**
 * A real `livespace serve` for the JS tests: its own data dir, database and port; stopped,
 * killed and restarted on the same port by the tests. Which binary and which database:
 * LIVESPACE_BIN (default ../../.venv/bin/livespace) and LIVESPACE_TEST_DATABASE_URL
 * (default: a SQLite file in a temporary directory); tests/integration/test_js_client.py
 * runs this suite once on SQLite and once on a fresh PostgreSQL database.
 */

import { type ChildProcess, spawn, execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { type ClientOptions, LivespaceClient } from "../../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
export const LIVESPACE = process.env.LIVESPACE_BIN ?? resolve(here, "../../../../../.venv/bin/livespace");

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => ok(port));
    });
    srv.on("error", fail);
  });
}

const opened: LivespaceClient[] = [];

/** A client that {@link closeClients} closes: a failed test leaves nothing reconnecting. */
export function openClient(options: ClientOptions): LivespaceClient {
  const client = new LivespaceClient(options);
  opened.push(client);
  return client;
}

export function closeClients(): void {
  for (const client of opened.splice(0)) client.close();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wait until `check()` is truthy (polling), or fail with `what`. */
export async function until<T>(check: () => T | Promise<T>, what: string, timeout = 20_000): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString("base64url");
}

export class Server {
  readonly secret = randomBytes(32).toString("hex");
  readonly dataDir = mkdtempSync(join(tmpdir(), "livespace-js-"));
  readonly databaseUrl: string;
  port = 0;
  private proc: ChildProcess | undefined;
  private readonly env: Record<string, string>;

  constructor(env: Record<string, string> = {}) {
    if (!existsSync(LIVESPACE)) {
      throw new Error(`no livespace binary at ${LIVESPACE}: run \`make install\` (or set LIVESPACE_BIN)`);
    }
    this.databaseUrl = process.env.LIVESPACE_TEST_DATABASE_URL ?? `sqlite:///${join(this.dataDir, "livespace.db")}`;
    this.env = {
      ...(process.env as Record<string, string>),
      JWT_SECRET: this.secret,
      DATABASE_URL: this.databaseUrl,
      LIVESPACE_DATA_DIR: this.dataDir,
      ...env,
    };
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get log(): string {
    const path = join(this.dataDir, "server.log");
    return existsSync(path) ? readFileSync(path, "utf8").slice(-3000) : "";
  }

  async start(): Promise<this> {
    if (!this.port) this.port = await freePort();
    const out = openSync(join(this.dataDir, "server.log"), "a");
    const proc = spawn(LIVESPACE, ["serve", "--host", "127.0.0.1", "--port", String(this.port)], {
      env: { ...this.env, LIVESPACE_NODE_ID: `js-${this.port}` },
      stdio: ["ignore", out, out],
    });
    this.proc = proc;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`server exited: ${this.log}`);
      try {
        const r = await fetch(`${this.url}/ws/health`, { signal: AbortSignal.timeout(1000) });
        if (r.ok) return this;
      } catch {
        // not up yet
      }
      await sleep(100);
    }
    throw new Error(`server did not start: ${this.log}`);
  }

  /** SIGTERM (a drain: sockets closed with 1012) or SIGKILL (a crash). */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    this.proc = undefined;
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }

  async restart(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.stop(signal);
    await this.start();
  }

  /** `livespace <args>` against this server's database (cleanup, workspace ...). */
  async cli(...args: string[]): Promise<string> {
    const { stdout } = await promisify(execFile)(LIVESPACE, args, { env: this.env });
    return stdout;
  }

  token(user: string, ttl = 3600, claims: Record<string, unknown> = {}): string {
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const payload = b64url(JSON.stringify({
      sub: user, name: user[0]!.toUpperCase() + user.slice(1), email: `${user}@example.com`,
      iat: now, exp: now + ttl, ...claims,
    }));
    const signature = createHmac("sha256", this.secret).update(`${header}.${payload}`).digest("base64url");
    return `${header}.${payload}.${signature}`;
  }

  /** A REST call as `user`; a 429 (the per-user HTTP budget) is retried after its Retry-After. */
  async api(user: string, method: string, path: string, body?: unknown): Promise<Record<string, any>> {
    let r: Response;
    for (let attempt = 0; ; attempt++) {
      r = await fetch(this.url + path, {
        method,
        headers: { Authorization: `Bearer ${this.token(user)}`, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (r.status !== 429 || attempt === 20) break;
      await sleep(Math.max(50, Number(r.headers.get("retry-after") ?? 0.1) * 1000));
    }
    const json = (await r.json()) as Record<string, any>;
    if (!r.ok) throw Object.assign(new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`), { status: r.status });
    return json;
  }

  /** A new workspace owned by `owner` with `members`. */
  async workspace(owner: string, ...members: string[]): Promise<string> {
    const ws = await this.api(owner, "POST", "/api/workspaces", { name: `js-${randomBytes(3).toString("hex")}` });
    for (const member of members) {
      await this.api(owner, "PUT", `/api/workspaces/${ws.id}/members/${member}`, { role: "member" });
    }
    return String(ws.id);
  }

  /** The workspace's whole kept log over HTTP. */
  async events(user: string, workspace: string): Promise<Array<Record<string, any>>> {
    const out: Array<Record<string, any>> = [];
    let since = 0;
    for (;;) {
      const page = await this.api(user, "GET", `/api/workspaces/${workspace}/events?since=${since}&limit=1000`);
      out.push(...page.events);
      if (!page.has_more) return out;
      since = page.events[page.events.length - 1].seq;
    }
  }

  async contacts(user: string, workspace: string): Promise<Array<Record<string, any>>> {
    return (await this.api(user, "GET", `/api/workspaces/${workspace}/contacts?limit=1000`)).contacts;
  }
}
