/** The client's options (each with a default), its snapshot, and the events `on()` gives. */

import type { BackoffOptions } from "./backoff.js";
import type { WebSocketConstructor } from "./connection.js";
import type { LivespaceError } from "./errors.js";
import type { OutboxStorage } from "./outbox.js";
import type { TokenSource } from "./token.js";
import type {
  AckFrame, BroadcastFrame, Conflict, Contact, DurableEvent, ErrorFrame, Frame, PendingMutation,
  PresenceFrame, Status, TypingFrame, User, Welcome,
} from "./types.js";

export interface ClientOptions extends BackoffOptions {
  /** The server's base URL, `http(s)://host:port`; REST and `ws(s)://` are derived from it. */
  url: string;
  /** The workspace id. */
  workspace: string;
  /** A JWT, or a function returning (a promise of) one: called at connect, reconnect and before `exp`. */
  token: TokenSource;
  /** A WebSocket constructor for runtimes without a global one. */
  WebSocket?: WebSocketConstructor;
  /** A fetch for runtimes without a global one. */
  fetch?: typeof globalThis.fetch;
  /** Where pending mutations are kept: IndexedDB in browsers, memory elsewhere. */
  storage?: OutboxStorage;
  /** Reconnect with a compacted replay when more than this many events behind. Default 1000. */
  compactThreshold?: number;
  /** No `welcome` within this many ms: the attempt is replaced. Default 10,000. */
  connectTimeout?: number;
  /** HTTP requests (the snapshot) give up after this many ms. Default 15,000. */
  requestTimeout?: number;
  /** Refresh the token this many ms before its `exp` (at most half its life). Default 30,000. */
  refreshLead?: number;
  /** Heartbeat in seconds when the server's `welcome` does not say. Default 25. */
  heartbeat?: number;
  /** Ask for batched frames (`batch=1`): fewer messages under load. Default true. */
  batch?: boolean;
  /** Contacts per page of the snapshot. Default 1000 (the server's maximum). */
  pageSize?: number;
  /** The server's frame limit in bytes: a bigger mutation is refused locally. Default 65,536. */
  maxFrame?: number;
  /** Delivery receipts (`ack {seq}`) at most this often, in ms; 0 sends none. Default 10,000. */
  receiptInterval?: number;
}

export const DEFAULTS = {
  minReconnectDelay: 500,
  maxReconnectDelay: 20_000,
  reconnectFactor: 2,
  compactThreshold: 1000,
  connectTimeout: 10_000,
  requestTimeout: 15_000,
  refreshLead: 30_000,
  heartbeat: 25,
  batch: true,
  pageSize: 1000,
  maxFrame: 65_536,
  receiptInterval: 10_000,
} as const;

/** What `getSnapshot()` returns: frozen, and the same object until something changes. */
export interface Snapshot {
  readonly status: Status;
  readonly seq: number;
  readonly epoch: string | undefined;
  /** This connection's user (from `welcome`). */
  readonly user: User | undefined;
  readonly contacts: ReadonlyMap<string, Contact>;
  readonly presence: ReadonlyMap<string, User>;
  /** contact id -> ids of the users typing on it. */
  readonly typing: ReadonlyMap<string, readonly string[]>;
  /** Mutations not acknowledged yet, oldest first (show them as "pending"). */
  readonly pending: readonly PendingMutation[];
  /** Updates refused for a stale `baseVersion`, until `dismissConflict(ref)`. */
  readonly conflicts: readonly Conflict[];
  /** Why the client is closed, when it stopped by itself (4001, 4003...). */
  readonly error: LivespaceError | undefined;
}

/** `client.on(type, handler)`: the server's frames by type, and the client's own events. */
export interface ClientEvents {
  contact_created: DurableEvent;
  contact_updated: DurableEvent;
  contact_deleted: DurableEvent;
  note_added: DurableEvent;
  note_updated: DurableEvent;
  /** Every durable event, once each, in seq order. */
  event: DurableEvent;
  welcome: Welcome;
  presence: PresenceFrame;
  typing: TypingFrame;
  broadcast: BroadcastFrame;
  ack: AckFrame;
  error: ErrorFrame;
  pong: Frame;
  role_changed: Frame;
  /** The status changed (and why). */
  status: { status: Status; previous: Status; reason: string };
  /** Events were missed (retention, a new epoch): the snapshot is being reloaded. */
  resync: { seq: number; epoch: string | undefined };
  /** An update was refused for a stale base version. */
  conflict: Conflict;
  /** The token was refreshed over the open socket. */
  refresh: { token: string };
  /** Something went wrong that the client handles itself (logged to console.warn if no handler). */
  warning: unknown;
}
