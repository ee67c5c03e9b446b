/**
 * `LivespaceClient`: one workspace kept current over a WebSocket, reconnecting by itself.
 *
 * The decisions live in pure parts: the state machine (`machine.ts`), the replica
 * (`replica.ts`: contacts, presence, dedupe, upserts) and the mutation queue
 * (`outbox.ts`); the engine (`engine.ts`) carries out their effects; this class is the
 * surface (DESIGN.md section 7).
 */

import type { WebSocketConstructor } from "./connection.js";
import { Engine, type Settings } from "./engine.js";
import { LivespaceError } from "./errors.js";
import { IndexedDBStorage } from "./idb.js";
import { MemoryStorage, Outbox } from "./outbox.js";
import { loadNotes, socketBase } from "./rest.js";
import { type ClientEvents, type ClientOptions, DEFAULTS, type Snapshot } from "./surface.js";
import type { AckFrame, Contact, MutationType, Note, PresenceStatus, Status, User } from "./types.js";

/** Typing renewals are sent at most this often (the server ends typing 5 s after the last). */
const TYPING_RENEW_MS = 2_000;

export class LivespaceClient {
  /** Contacts by id, kept current (do not modify). */
  readonly contacts: ReadonlyMap<string, Contact>;
  /** Online users by id, kept current (do not modify). */
  readonly presence: ReadonlyMap<string, User>;
  private readonly engine: Engine;
  private readonly maxFrame: number;
  private readonly typingSent = new Map<string, number>();

  constructor(options: ClientOptions) {
    if (!options || typeof options.url !== "string") throw new TypeError("options.url is required");
    if (typeof options.workspace !== "string" || !options.workspace) throw new TypeError("options.workspace is required");
    if (typeof options.token !== "string" && typeof options.token !== "function") {
      throw new TypeError("options.token must be a string or a function returning one");
    }
    const WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocket) {
      throw new TypeError("no WebSocket here: pass the WebSocket option, or run Node 22+ (or Node 20 with --experimental-websocket)");
    }
    const { url, token, storage, WebSocket: _ws, fetch, ...rest } = options;
    const settings: Settings = { ...DEFAULTS, ...withoutUndefined(rest), workspace: options.workspace };
    const base = url.replace(/\/+$/, "");
    const store = storage ?? (IndexedDBStorage.available() ? new IndexedDBStorage() : new MemoryStorage());
    this.engine = new Engine({
      settings,
      token,
      http: { base, fetch: fetch ?? globalThis.fetch.bind(globalThis), timeout: settings.requestTimeout },
      wsBase: socketBase(base),
      WebSocket,
      outbox: new Outbox(store, (e) => this.engine.report(e)),
    });
    this.maxFrame = settings.maxFrame;
    this.contacts = this.engine.replica.contacts;
    this.presence = this.engine.replica.presence;
  }

  // ---- state ------------------------------------------------------------------------------

  get status(): Status {
    return this.engine.status;
  }

  /** The last durable event applied (or the snapshot's position). */
  get seq(): number {
    return this.engine.replica.seq;
  }

  /** The log incarnation `seq` belongs to. */
  get epoch(): string | undefined {
    return this.engine.replica.epoch;
  }

  /** This connection's user, from `welcome`. */
  get user(): User | undefined {
    return this.engine.me;
  }

  /** For React's useSyncExternalStore: `listener` is called after changes. */
  subscribe = (listener: () => void): (() => void) => {
    this.engine.listeners.add(listener);
    return () => {
      this.engine.listeners.delete(listener);
    };
  };

  /** An immutable view of the state; the same object until something changes. */
  getSnapshot = (): Snapshot => {
    const e = this.engine;
    return e.view.get({
      status: e.status,
      seq: e.replica.seq,
      epoch: e.replica.epoch,
      user: e.me,
      pending: e.outbox.pending,
      conflicts: e.conflicts,
      error: e.lastError,
    });
  };

  /** Frames by type (durable events once each, in order), and the client's own events. */
  on<K extends keyof ClientEvents>(type: K, handler: (value: ClientEvents[K]) => void): () => void {
    return this.engine.events.on(type, handler);
  }

  /** A contact's notes, oldest first, over HTTP (notes are not kept in the client). */
  async notes(contactId: string): Promise<Note[]> {
    const e = this.engine;
    return loadNotes(e.http, e.workspace, contactId, await e.token());
  }

  // ---- lifecycle --------------------------------------------------------------------------

  /** Resolves once live (snapshot loaded, socket open, replay done); rejects if it stops. */
  connect(): Promise<void> {
    return this.engine.connect();
  }

  /** Close for good: socket and timers; pending mutations stay stored for next time. */
  close(): void {
    this.engine.input({ type: "close" });
  }

  // ---- mutations ----------------------------------------------------------------------------

  /** Send a mutation (queued while offline); resolves with its ack, rejects with its error. */
  mutate(type: MutationType, data: Record<string, unknown>): Promise<AckFrame> {
    if (this.engine.machine.phase === "closed") {
      return Promise.reject(new LivespaceError("closed", "the client was closed"));
    }
    if (JSON.stringify({ type, ref: "m-000000000000000000000000", data }).length > this.maxFrame) {
      return Promise.reject(new LivespaceError("too_large", `the ${type} frame is over ${this.maxFrame} bytes`));
    }
    const [, promise] = this.engine.outbox.add(type, data);
    this.engine.changed();
    this.engine.flush();
    return promise;
  }

  async createContact(fields: { name: string } & Record<string, unknown>): Promise<Contact> {
    return (await this.mutate("contact_created", fields)).data as unknown as Contact;
  }

  async updateContact(id: string, changes: Record<string, unknown>, options: { baseVersion?: number } = {}): Promise<Contact> {
    const data: Record<string, unknown> = { id, changes };
    if (options.baseVersion !== undefined) data.base_version = options.baseVersion;
    return (await this.mutate("contact_updated", data)).data as unknown as Contact;
  }

  async deleteContact(id: string): Promise<Contact> {
    return (await this.mutate("contact_deleted", { id })).data as unknown as Contact;
  }

  async addNote(contactId: string, body: string): Promise<Note> {
    return (await this.mutate("note_added", { contact_id: contactId, body })).data as unknown as Note;
  }

  /** Forget a conflict the application has dealt with. */
  dismissConflict(ref: string): void {
    const e = this.engine;
    const next = e.conflicts.filter((c) => c.ref !== ref);
    if (next.length === e.conflicts.length) return;
    e.conflicts = next;
    e.changed();
  }

  // ---- ephemeral signals ------------------------------------------------------------------

  /** Typing on a contact: call it on every keystroke (renewals are throttled). Dropped offline. */
  setTyping(contactId: string, isTyping: boolean): void {
    const now = Date.now();
    const last = this.typingSent.get(contactId);
    if (isTyping && last !== undefined && now - last < TYPING_RENEW_MS) return;
    if (!isTyping && last === undefined) return;
    if (isTyping) this.typingSent.set(contactId, now);
    else this.typingSent.delete(contactId);
    this.engine.conn?.send({ type: "typing", data: { contact_id: contactId, is_typing: isTyping } });
  }

  /** Status, the contact viewed, the call: kept and sent again after every reconnect. */
  async setPresence(presence: { status?: PresenceStatus; viewing?: string | null; call?: string | null }): Promise<void> {
    const e = this.engine;
    const data: Record<string, unknown> = { ...e.presenceWanted, status: presence.status ?? e.presenceWanted?.status ?? "online" };
    if (presence.viewing !== undefined) data.viewing = presence.viewing;
    if (presence.call !== undefined) data.call = presence.call;
    e.presenceWanted = data;
    if (e.machine.phase === "live" && e.conn) await e.conn.request("presence_update", data);
  }

  /** An ephemeral message to the workspace, or `to` one user's connections. */
  async broadcast(event: string, payload: Record<string, unknown>, options: { to?: string; echo?: boolean } = {}): Promise<void> {
    const e = this.engine;
    if (e.machine.phase !== "live" || !e.conn) throw new LivespaceError("offline", "not live: broadcast dropped");
    const data: Record<string, unknown> = { event, payload };
    if (options.to !== undefined) data.to = options.to;
    if (options.echo !== undefined) data.echo = options.echo;
    await e.conn.request("broadcast", data);
  }
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
