/**
 * A TCP proxy in front of the server, to break the network the way trains and laptops do:
 * `cut()` resets every open connection, `hold()` keeps them open but forwards nothing (a
 * dead connection, noticed only by the heartbeat), `refuse()` turns new connections away.
 */

import { type Server as NetServer, type Socket, connect, createServer } from "node:net";

export class Proxy {
  port = 0;
  private server: NetServer | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private readonly held = new Set<[Socket, Socket]>();
  private refusing = false;

  constructor(private readonly target: () => number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((client) => {
      if (this.refusing) {
        client.resetAndDestroy();
        return;
      }
      const upstream = connect(this.target(), "127.0.0.1");
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const end = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
    });
    await new Promise<void>((ok) => this.server!.listen(0, "127.0.0.1", ok));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  /** Reset every open connection (the client sees 1006). */
  cut(): void {
    for (const [client, upstream] of this.pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Keep the open connections but forward nothing either way from now on. */
  hold(): void {
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
      this.held.add([client, upstream]);
    }
    this.pairs.clear();
  }

  refuse(on: boolean): void {
    this.refusing = on;
    if (on) this.cut();
  }

  async stop(): Promise<void> {
    this.cut();
    for (const [client, upstream] of this.held) {
      client.destroy();
      upstream.destroy();
    }
    this.held.clear();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }
}
