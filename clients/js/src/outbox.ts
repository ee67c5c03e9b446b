/**
 * Mutations waiting for their `ack`: kept in order, persisted through a pluggable
 * {@link OutboxStorage}, and sent again with their original `ref` after every reconnect
 * until acknowledged (the server applies a retried `ref` once and acknowledges it again).
 */

import type { AckFrame, ErrorFrame, MutationType, PendingMutation } from "./types.js";

/**
 * Where pending mutations survive a reload. `scope` names one client's queue (base URL +
 * workspace + user), so several workspaces share one storage. Writes need not be awaited
 * in order by the caller: implementations keep the order of `put` calls.
 */
export interface OutboxStorage {
  load(scope: string): Promise<PendingMutation[]>;
  put(scope: string, item: PendingMutation): Promise<void>;
  delete(scope: string, ref: string): Promise<void>;
}

/** Keeps nothing across a restart: the default in Node. */
export class MemoryStorage implements OutboxStorage {
  private readonly scopes = new Map<string, Map<string, PendingMutation>>();

  async load(scope: string): Promise<PendingMutation[]> {
    return [...(this.scopes.get(scope)?.values() ?? [])];
  }

  async put(scope: string, item: PendingMutation): Promise<void> {
    let items = this.scopes.get(scope);
    if (!items) this.scopes.set(scope, (items = new Map()));
    items.set(item.ref, item);
  }

  async delete(scope: string, ref: string): Promise<void> {
    this.scopes.get(scope)?.delete(ref);
  }
}

interface Waiter {
  resolve(ack: AckFrame): void;
  reject(error: Error): void;
}

/** A new `ref`: random, so that it is unique for the user across tabs and reloads. */
export function newRef(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  let out = "m-";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Errors after which a mutation is sent again (the server did not apply it). */
export const RETRY_CODES: ReadonlySet<string> = new Set(["rate_limited", "unavailable"]);

export class Outbox {
  /** In creation order. */
  private items: PendingMutation[] = [];
  private readonly waiters = new Map<string, Waiter>();
  /** refs sent on the current socket (cleared when a new one opens). */
  private readonly sent = new Set<string>();
  /** Known once the first token names the user (see {@link restore}). */
  private scope: string | undefined;

  constructor(
    private readonly storage: OutboxStorage,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  get pending(): readonly PendingMutation[] {
    return this.items;
  }

  has(ref: string): boolean {
    return this.items.some((item) => item.ref === ref);
  }

  /**
   * Open the queue of `scope` (one user's, in one workspace, on one server): load what an
   * earlier session left there, older items first, and store the ones made before this.
   * Once per outbox; the items added before it wait in memory.
   */
  async restore(scope: string): Promise<void> {
    if (this.scope !== undefined) return;
    this.scope = scope;
    const stored = await this.storage.load(scope);
    const known = new Set(this.items.map((item) => item.ref));
    const older = stored.filter((item) => !known.has(item.ref));
    older.sort((a, b) => a.createdAt - b.createdAt);
    for (const item of this.items) this.storage.put(scope, item).catch(this.onError);
    this.items = [...older, ...this.items];
  }

  /** Queue a mutation; the promise settles with its ack or error. */
  add(type: MutationType, data: Record<string, unknown>, ref = newRef()): [PendingMutation, Promise<AckFrame>] {
    // strictly increasing, so that the stored order is the order of the calls
    const createdAt = Math.max(Date.now(), (this.items.at(-1)?.createdAt ?? 0) + 1);
    const item: PendingMutation = Object.freeze({ ref, type, data: Object.freeze({ ...data }), createdAt });
    this.items = [...this.items, item];
    const promise = new Promise<AckFrame>((resolve, reject) => this.waiters.set(ref, { resolve, reject }));
    if (this.scope !== undefined) this.storage.put(this.scope, item).catch(this.onError);
    return [item, promise];
  }

  /** Items not yet sent on the current socket, in order; marks them sent. */
  takeUnsent(): PendingMutation[] {
    const out = this.items.filter((item) => !this.sent.has(item.ref));
    for (const item of out) this.sent.add(item.ref);
    return out;
  }

  /** A new socket: everything pending is to be sent again. */
  resetSent(): void {
    this.sent.clear();
  }

  /** Send this one again on the current socket (after `rate_limited` / `unavailable`). */
  unmarkSent(ref: string): void {
    this.sent.delete(ref);
  }

  /** The mutation `ref` is settled: remove it; returns it, or undefined if not ours. */
  settle(ref: string, outcome: { ack: AckFrame } | { error: Error }): PendingMutation | undefined {
    const item = this.items.find((i) => i.ref === ref);
    if (!item) return undefined;
    this.items = this.items.filter((i) => i.ref !== ref);
    this.sent.delete(ref);
    if (this.scope !== undefined) this.storage.delete(this.scope, ref).catch(this.onError);
    const waiter = this.waiters.get(ref);
    this.waiters.delete(ref);
    if (waiter) {
      if ("ack" in outcome) waiter.resolve(outcome.ack);
      else waiter.reject(outcome.error);
    }
    return item;
  }

  /** Reject every waiter (the client was closed); the items stay stored for next time. */
  abandon(error: Error): void {
    for (const waiter of this.waiters.values()) waiter.reject(error);
    this.waiters.clear();
  }
}

/** Whether an error frame means "send the same ref again later". */
export function isRetryable(frame: ErrorFrame): boolean {
  return RETRY_CODES.has(frame.code);
}
