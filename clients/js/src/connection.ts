/**
 * One WebSocket to the server: the token in the subprotocol list, frames parsed (one
 * object, or an array with `batch=1`), requests matched to replies by `ref`, a `ping`
 * every heartbeat and a watchdog: no frame for two heartbeats (or no `welcome` within
 * the connect timeout) reports the connection dead. Browsers do not show WebSocket pings
 * to scripts, so the liveness check rides on application frames.
 */

import { LivespaceError } from "./errors.js";
import { newRef } from "./outbox.js";
import type { AckFrame, Frame } from "./types.js";

/** The part of the WebSocket API this client uses (browsers, Node 22, undici, `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ConnectionEvents {
  frame(frame: Frame): void;
  /** After all the frames of one message were handled. */
  flushed(): void;
  closed(code: number, reason: string): void;
  dead(reason: string): void;
}

const OPEN = 1;

interface Pending {
  resolve(ack: AckFrame): void;
  reject(error: Error): void;
}

export class Connection {
  private readonly ws: WebSocketLike;
  private readonly pending = new Map<string, Pending>();
  private lastFrameAt = Date.now();
  private lastPingAt = 0;
  private heartbeatMs = 0;
  private watchdog: ReturnType<typeof setTimeout> | ReturnType<typeof setInterval> | undefined;
  private receiptSeq = 0;
  private receiptTimer: ReturnType<typeof setTimeout> | undefined;
  private probeTimer: ReturnType<typeof setTimeout> | undefined;
  private ended = false;

  constructor(
    WebSocketImpl: WebSocketConstructor,
    url: string,
    token: string,
    connectTimeout: number,
    private readonly on: ConnectionEvents,
  ) {
    this.ws = new WebSocketImpl(url, ["livespace.v1", `bearer.${token}`]);
    this.ws.onmessage = (ev) => this.message(ev.data);
    this.ws.onclose = (ev) => this.end(ev.code, ev.reason);
    // A close event should follow an error; some runtimes (undici in Node 20) send none
    // when the handshake fails, so an error ends the connection unless a close comes soon.
    this.ws.onerror = () => {
      if (this.ws.readyState !== OPEN) this.end(1006, "connection failed");
      else setTimeout(() => this.end(1006, "connection error"), 1_000);
    };
    this.watchdog = setTimeout(() => this.die("no welcome within the connect timeout"), connectTimeout);
  }

  /** After `welcome`: ping every `ms`, dead after two of them without a frame. */
  setHeartbeat(ms: number): void {
    clearTimeout(this.watchdog as ReturnType<typeof setTimeout>);
    this.heartbeatMs = Math.max(100, ms);
    this.watchdog = setInterval(() => this.check(), this.heartbeatMs / 2);
  }

  /** Dead if silent for two heartbeats, else ping when one is due (also on page wake). */
  check(): void {
    if (this.ended || !this.heartbeatMs) return;
    const now = Date.now();
    if (now - this.lastFrameAt > 2 * this.heartbeatMs) {
      this.die(`no frame for ${Math.round((now - this.lastFrameAt) / 1000)} s`);
    } else if (now - this.lastPingAt >= this.heartbeatMs) {
      this.lastPingAt = now;
      this.send({ type: "ping" });
    }
  }

  /**
   * Is the connection still there? (a page woke up, the network changed): a `ping` now,
   * and dead unless some frame arrives within `ms`.
   */
  probe(ms: number): void {
    if (this.ended || !this.heartbeatMs) return;
    const asked = Date.now();
    this.lastPingAt = asked;
    this.send({ type: "ping" });
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      if (this.lastFrameAt < asked) this.die(`no answer to a ping within ${ms} ms`);
    }, ms);
  }

  send(frame: { type: string; ref?: string; data?: unknown }): boolean {
    if (this.ended || this.ws.readyState !== OPEN) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** A frame whose `ack` (resolve) or `error` (reject) comes back by `ref`. */
  request(type: string, data: Record<string, unknown>): Promise<AckFrame> {
    const ref = newRef();
    return new Promise<AckFrame>((resolve, reject) => {
      if (!this.send({ type, ref, data })) {
        reject(new LivespaceError("offline", `not connected: ${type} not sent`));
        return;
      }
      this.pending.set(ref, { resolve, reject });
    });
  }

  /** Settle the request `ref` if it is one of this connection's; true if it was. */
  settle(ref: string, ack?: AckFrame, error?: Error): boolean {
    const waiter = this.pending.get(ref);
    if (!waiter) return false;
    this.pending.delete(ref);
    if (error) waiter.reject(error);
    else waiter.resolve(ack!);
    return true;
  }

  /**
   * A delivery receipt (`ack {seq}`: the server's per-user cursor and delivery analytics),
   * at most one per `interval` ms (each is a write on the server); 0: none.
   */
  receipt(seq: number, interval: number): void {
    this.receiptSeq = seq;
    if (this.receiptTimer !== undefined || interval <= 0) return;
    this.send({ type: "ack", data: { seq } });
    const sent = seq;
    this.receiptTimer = setTimeout(() => {
      this.receiptTimer = undefined;
      if (this.receiptSeq > sent) this.receipt(this.receiptSeq, interval);
    }, interval);
  }

  close(code: number, reason: string): void {
    if (this.ended) return;
    this.shutdown(new LivespaceError("offline", "the connection closed"));
    try {
      this.ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  private message(data: unknown): void {
    if (this.ended) return;
    this.lastFrameAt = Date.now();
    if (typeof data !== "string") return; // the server sends text only
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    if (Array.isArray(parsed)) {
      for (const frame of parsed) {
        if (this.ended) return;
        if (frame && typeof frame === "object") this.on.frame(frame as Frame);
      }
    } else if (parsed && typeof parsed === "object") {
      this.on.frame(parsed as Frame);
    }
    if (!this.ended) this.on.flushed();
  }

  private die(reason: string): void {
    if (this.ended) return;
    this.on.dead(reason);
  }

  private end(code: number, reason: string): void {
    if (this.ended) return;
    this.shutdown(new LivespaceError("offline", `the connection closed (${code})`));
    this.on.closed(code, reason);
  }

  private shutdown(error: Error): void {
    this.ended = true;
    clearTimeout(this.watchdog as ReturnType<typeof setTimeout>);
    clearInterval(this.watchdog as ReturnType<typeof setInterval>);
    clearTimeout(this.receiptTimer);
    clearTimeout(this.probeTimer);
    this.ws.onmessage = this.ws.onclose = this.ws.onerror = null;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}
