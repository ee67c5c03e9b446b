/**
 * `LivespaceClient`: the workspace kept current over one WebSocket, reconnecting by itself.
 *
 * The decisions live in pure parts: {@link step} (the state machine), {@link Replica}
 * (contacts, presence, dedupe, upserts), {@link Outbox} (the mutation queue). This class
 * is the I/O around them: timers, the socket, fetch, and the browser's events.
 */

import { ConflictError, LivespaceError } from "./errors.js";
import { Emitter } from "./emitter.js";
import { type Effect, type Input, type MachineState, initialState, statusOf, step } from "./machine.js";
import { Connection, type WebSocketLike, type WebSocketConstructor } from "./connection.js";
import { MemoryStorage, Outbox, type OutboxStorage, isRetryable } from "./outbox.js";
import { IndexedDBStorage } from "./idb.js";
import { Replica } from "./replica.js";
import { type Http, fatalCode, loadContacts, loadUsers, socketBase } from "./rest.js";
import { type TokenSource, refreshDelay, resolveToken, tokenUser } from "./token.js";
import type { ClientEvents, ClientOptions, Snapshot } from "./surface.js";
import { DEFAULTS } from "./surface.js";
import type {
  AckFrame, Conflict, Contact, DurableEvent, ErrorFrame, Frame, MutationType,
  PresenceFrame, PresenceStatus, Status, TypingFrame, User, Welcome,
} from "./types.js";
import { DURABLE_TYPES } from "./types.js";

const DURABLE: ReadonlySet<string> = new Set(DURABLE_TYPES);

export class LivespaceClient {
  /** Contacts by id, kept current (do not modify). */
  readonly contacts: ReadonlyMap<string, Contact>;
  /** Online users by id, kept current (do not modify). */
  readonly presence: ReadonlyMap<string, User>;

  private readonly options: Required<Omit<ClientOptions, "storage" | "WebSocket" | "fetch">>;
  private readonly token: TokenSource;
  private readonly http: Http;
  private readonly wsBase: string;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly replica = new Replica();
  private readonly outbox: Outbox;
  private readonly events = new Emitter<ClientEvents>((e) => this.report(e));
  private readonly listeners = new Set<() => void>();
  private machine: MachineState;
  private conn: Connection | undefined;
  private attemptId = 0;
  private currentToken: string | undefined;
  private me: User | undefined;
  private lastError: LivespaceError | undefined;
  private conflicts: Conflict[] = [];
  private replayTo = 0;
  private compactedReplay = false;
  private waitTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private presenceWanted: Record<string, unknown> | undefined;
  private typingSent = new Map<string, number>();
  private connectWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  private snapshot: Snapshot | undefined;
  private dirty = { contacts: true, presence: true, typing: true };
  private notifyQueued = false;
  private detachBrowser: (() => void) | undefined;

  constructor(options: ClientOptions) {
    if (!options || typeof options.url !== "string") throw new TypeError("options.url is required");
    if (typeof options.workspace !== "string" || !options.workspace) throw new TypeError("options.workspace is required");
    if (typeof options.token !== "string" && typeof options.token !== "function") {
      throw new TypeError("options.token must be a string or a function returning one");
    }
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketImpl) {
      throw new TypeError("no WebSocket here: pass the WebSocket option, or run Node 22+ (or Node 20 with --experimental-websocket)");
    }
    this.WebSocketImpl = WebSocketImpl;
    const { storage, WebSocket: _ws, fetch, ...rest } = options;
    this.options = { ...DEFAULTS, ...rest } as typeof this.options;
    this.token = options.token;
    const base = options.url.replace(/\/+$/, "");
    this.wsBase = socketBase(base);
    this.http = { base, fetch: fetch ?? globalThis.fetch.bind(globalThis), timeout: this.options.requestTimeout };
    const scope = `${base}|${options.workspace}|${typeof options.token === "string" ? (tokenUser(options.token) ?? "") : ""}`;
    const store: OutboxStorage = storage ?? (IndexedDBStorage.available() ? new IndexedDBStorage() : new MemoryStorage());
    this.outbox = new Outbox(store, scope, (e) => this.report(e));
    this.contacts = this.replica.contacts;
    this.presence = this.replica.presence;
    const online = typeof navigator !== "undefined" && typeof navigator.onLine === "boolean" ? navigator.onLine : true;
    this.machine = initialState(online);
  }

  // ---- state ------------------------------------------------------------------------------

  get status(): Status {
    return statusOf(this.machine.phase);
  }

  /** The last durable event applied (or the snapshot's position). */
  get seq(): number {
    return this.replica.seq;
  }

  get epoch(): string | undefined {
    return this.replica.epoch;
  }

  /** This connection's user, from `welcome`. */
  get user(): User | undefined {
    return this.me;
  }

  /** For React's useSyncExternalStore: called after every change. */
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  /** An immutable view of the state; the same object until something changes. */
  getSnapshot = (): Snapshot => {
    if (this.snapshot && !this.dirty.contacts && !this.dirty.presence && !this.dirty.typing && this.snapshotFresh()) {
      return this.snapshot;
    }
    const prev = this.snapshot;
    this.snapshot = Object.freeze({
      status: this.status,
      seq: this.replica.seq,
      epoch: this.replica.epoch,
      user: this.me,
      contacts: !prev || this.dirty.contacts ? new Map(this.replica.contacts) : prev.contacts,
      presence: !prev || this.dirty.presence ? new Map(this.replica.presence) : prev.presence,
      typing: !prev || this.dirty.typing ? this.replica.typingLists() : prev.typing,
      pending: this.outbox.pending,
      conflicts: this.conflicts,
      error: this.lastError,
    });
    this.dirty = { contacts: false, presence: false, typing: false };
    return this.snapshot;
  };

  private snapshotFresh(): boolean {
    const s = this.snapshot!;
    return s.status === this.status && s.seq === this.replica.seq && s.epoch === this.replica.epoch
      && s.user === this.me && s.pending === this.outbox.pending && s.conflicts === this.conflicts
      && s.error === this.lastError;
  }

  /** Frames by type (durable events once each, in order), and `status`, `resync`, `conflict`. */
  on<K extends keyof ClientEvents>(type: K, handler: (value: ClientEvents[K]) => void): () => void {
    return this.events.on(type, handler);
  }

  // ---- lifecycle --------------------------------------------------------------------------

  /** Resolves once live: snapshot loaded, socket open, replay done. Rejects if it stops. */
  connect(): Promise<void> {
    if (this.machine.phase === "live") return Promise.resolve();
    if (this.machine.phase === "closed") {
      return Promise.reject(this.lastError ?? new LivespaceError("closed", "the client was closed"));
    }
    const done = new Promise<void>((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
    if (this.machine.phase === "idle") {
      this.detachBrowser = this.watchBrowser();
      this.outbox.restore().then(
        () => this.input({ type: "connect" }),
        (error) => {
          this.report(error);
          this.input({ type: "connect" });
        },
      );
    }
    return done;
  }

  /** Close for good: the socket, the timers; pending mutations stay stored for next time. */
  close(): void {
    this.input({ type: "close" });
  }

  // ---- mutations and signals --------------------------------------------------------------

  /** Send a mutation (queued while offline); resolves with its ack, rejects with its error. */
  mutate(type: MutationType, data: Record<string, unknown>): Promise<AckFrame> {
    if (this.machine.phase === "closed") {
      return Promise.reject(new LivespaceError("closed", "the client was closed"));
    }
    if (JSON.stringify({ type, ref: "m-000000000000000000000000", data }).length > this.options.maxFrame) {
      return Promise.reject(new LivespaceError("too_large", `the ${type} frame is over ${this.options.maxFrame} bytes`));
    }
    const [, promise] = this.outbox.add(type, data);
    this.changed();
    if (this.machine.phase === "live") this.flush();
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

  async addNote(contactId: string, body: string): Promise<Record<string, unknown>> {
    return (await this.mutate("note_added", { contact_id: contactId, body })).data ?? {};
  }

  /** Typing on a contact; renewals are sent at most every 2 s. Dropped while offline. */
  setTyping(contactId: string, isTyping: boolean): void {
    const now = Date.now();
    const last = this.typingSent.get(contactId);
    if (isTyping && last !== undefined && now - last < 2_000) return;
    if (!isTyping && last === undefined) return;
    if (isTyping) this.typingSent.set(contactId, now);
    else this.typingSent.delete(contactId);
    this.conn?.send({ type: "typing", data: { contact_id: contactId, is_typing: isTyping } });
  }

  /** Status and what this user looks at; kept and sent again after every reconnect. */
  setPresence(presence: { status?: PresenceStatus; viewing?: string | null; call?: string | null }): Promise<void> {
    const data: Record<string, unknown> = { status: presence.status ?? (this.presenceWanted?.status as string) ?? "online" };
    if (presence.viewing !== undefined) data.viewing = presence.viewing;
    if (presence.call !== undefined) data.call = presence.call;
    this.presenceWanted = { ...this.presenceWanted, ...data };
    if (this.machine.phase !== "live" || !this.conn) return Promise.resolve();
    return this.conn.request("presence_update", data).then(() => undefined);
  }

  /** An ephemeral message to the workspace (or `to` one user); rejects with `offline` when not live. */
  broadcast(event: string, payload: Record<string, unknown>, options: { to?: string; echo?: boolean } = {}): Promise<void> {
    if (this.machine.phase !== "live" || !this.conn) {
      return Promise.reject(new LivespaceError("offline", "not live: broadcast dropped"));
    }
    const data: Record<string, unknown> = { event, payload };
    if (options.to !== undefined) data.to = options.to;
    if (options.echo !== undefined) data.echo = options.echo;
    return this.conn.request("broadcast", data).then(() => undefined);
  }

  /** Forget a conflict the application has dealt with. */
  dismissConflict(ref: string): void {
    const next = this.conflicts.filter((c) => c.ref !== ref);
    if (next.length !== this.conflicts.length) {
      this.conflicts = next;
      this.changed();
    }
  }

  // ---- the state machine's driver ---------------------------------------------------------

  private input(input: Input): void {
    const before = this.machine;
    const [next, effects] = step(before, input, {
      ...this.options,
      compactThreshold: this.options.compactThreshold,
    });
    this.machine = next;
    for (const effect of effects) this.run(effect);
    if (statusOf(before.phase) !== statusOf(next.phase)) {
      this.events.emit("status", { status: statusOf(next.phase), previous: statusOf(before.phase), reason: next.reason });
      this.changed();
    }
  }

  private run(effect: Effect): void {
    switch (effect.do) {
      case "load_snapshot":
        void this.loadSnapshot(++this.attemptId);
        break;
      case "open_socket":
        void this.openSocket(++this.attemptId, effect.compact);
        break;
      case "close_socket":
        this.dropSocket(effect.code, effect.reason);
        break;
      case "wait":
        clearTimeout(this.waitTimer);
        this.waitTimer = effect.delay === null ? undefined : setTimeout(() => this.input({ type: "retry" }), effect.delay);
        break;
      case "cancel_wait":
        clearTimeout(this.waitTimer);
        this.waitTimer = undefined;
        break;
      case "went_live":
        this.wentLive();
        break;
      case "resync":
        this.events.emit("resync", { seq: this.replica.seq, epoch: this.replica.epoch });
        break;
      case "stop":
        this.stopped(new LivespaceError(effect.code, effect.message));
        break;
    }
  }

  private async freshToken(): Promise<string> {
    this.currentToken = await resolveToken(this.token);
    return this.currentToken;
  }

  private async loadSnapshot(attempt: number): Promise<void> {
    try {
      const token = await this.freshToken();
      const list = await loadContacts(this.http, this.options.workspace, token, this.options.pageSize);
      if (attempt !== this.attemptId || this.machine.phase !== "snapshot") return;
      this.replica.loadSnapshot(list.contacts, list.seq, list.epoch);
      this.dirty.contacts = true;
      this.input({ type: "snapshot_loaded" });
    } catch (error) {
      if (attempt !== this.attemptId) return;
      const message = error instanceof Error ? error.message : String(error);
      this.input({ type: "snapshot_failed", fatal: fatalCode(error), message });
    }
  }

  private async openSocket(attempt: number, compact: boolean): Promise<void> {
    let token: string;
    try {
      token = await this.freshToken();
    } catch (error) {
      if (attempt === this.attemptId) this.input({ type: "socket_closed", code: 1006, reason: `token: ${String(error)}` });
      return;
    }
    if (attempt !== this.attemptId || this.machine.phase !== "opening") return;
    const params = new URLSearchParams({ since: String(this.replica.seq) });
    if (this.replica.epoch !== undefined) params.set("epoch", this.replica.epoch);
    if (compact) params.set("compact", "1");
    if (this.options.batch) params.set("batch", "1");
    const url = `${this.wsBase}/ws/workspace/${encodeURIComponent(this.options.workspace)}?${params}`;
    this.outbox.resetSent();
    this.conn = new Connection(this.WebSocketImpl, url, token, this.options.connectTimeout, {
      frame: (frame) => this.handle(frame),
      flushed: () => this.flushChanges(),
      closed: (code, reason) => {
        this.conn = undefined;
        this.clearSocketTimers();
        this.input({ type: "socket_closed", code, reason });
      },
      dead: (reason) => this.input({ type: "dead", reason }),
    });
  }

  private dropSocket(code: number, reason: string): void {
    this.clearSocketTimers();
    this.conn?.close(code, reason);
    this.conn = undefined;
  }

  private clearSocketTimers(): void {
    clearTimeout(this.refreshTimer);
    clearTimeout(this.retryTimer);
    this.refreshTimer = this.retryTimer = undefined;
    this.typingSent.clear();
  }

  private wentLive(): void {
    this.flush();
    if (this.presenceWanted && this.conn) this.conn.send({ type: "presence_update", data: this.presenceWanted });
    this.conn?.receipt(this.replica.seq);
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const w of waiters) w.resolve();
  }

  private stopped(error: LivespaceError): void {
    this.lastError = error;
    clearTimeout(this.typingTimer);
    this.detachBrowser?.();
    this.detachBrowser = undefined;
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const w of waiters) w.reject(error);
    this.outbox.abandon(error);
    this.changed();
  }

  /** Send the mutations not yet sent on this socket, in order, with their refs. */
  private flush(): void {
    const conn = this.conn;
    if (!conn) return;
    for (const item of this.outbox.takeUnsent()) conn.send({ type: item.type, ref: item.ref, data: item.data });
  }

  // ---- frames -----------------------------------------------------------------------------

  private handle(frame: Frame): void {
    const type = frame.type;
    if (DURABLE.has(type)) {
      this.durable(frame as unknown as DurableEvent);
    } else if (type === "ack") {
      this.acked(frame as unknown as AckFrame);
    } else if (type === "error") {
      this.failed(frame as unknown as ErrorFrame);
    } else if (type === "presence") {
      if (this.replica.applyPresence(frame as unknown as PresenceFrame)) this.dirty.presence = true;
    } else if (type === "typing") {
      if (this.replica.applyTyping(frame as unknown as TypingFrame, Date.now())) {
        this.dirty.typing = true;
        this.scheduleTypingExpiry();
      }
    } else if (type === "welcome") {
      this.welcomed(frame as unknown as Welcome);
    } else if (type === "role_changed" && this.me) {
      this.me = Object.freeze({ ...this.me, role: frame.role as string });
    }
    if (type !== "ack" && type !== "error") this.events.emit(type as keyof ClientEvents, frame as never);
  }

  private welcomed(welcome: Welcome): void {
    this.me = Object.freeze({ ...welcome.user });
    this.replica.resetPresence(welcome.presence ?? []);
    this.dirty.presence = true;
    if (welcome.presence_truncated) void this.completePresence();
    this.conn?.setHeartbeat((welcome.heartbeat_s ?? this.options.heartbeat) * 1000);
    const staleEpoch = welcome.epoch !== undefined && this.replica.epoch !== undefined && welcome.epoch !== this.replica.epoch;
    if (welcome.epoch !== undefined && this.replica.epoch === undefined) this.replica.epoch = welcome.epoch;
    const replay = welcome.replay;
    this.replayTo = replay?.to_seq ?? this.replica.seq;
    this.compactedReplay = replay?.compacted === true;
    const behind = replay ? Math.max(0, replay.to_seq - this.replica.seq) : 0;
    this.input({ type: "welcome", resync: welcome.resync_required === true || staleEpoch, behind, compacted: this.compactedReplay });
    if (this.machine.phase === "live" || this.machine.phase === "replaying") this.scheduleRefresh();
  }

  private durable(event: DurableEvent): void {
    const phase = this.machine.phase;
    if (phase !== "live" && phase !== "replaying") return; // a reopening socket's leftovers
    const result = this.replica.applyEvent(event, phase === "live" || !this.compactedReplay);
    if (result === "gap") {
      this.input({ type: "gap" });
      return;
    }
    if (result === "duplicate") return;
    if (event.type.startsWith("contact_")) this.dirty.contacts = true;
    this.events.emit(event.type, event);
    this.events.emit("event", event);
    if (phase === "replaying" && this.replica.seq >= this.replayTo) this.input({ type: "caught_up" });
    else if (phase === "live") this.conn?.receipt(this.replica.seq);
  }

  private acked(ack: AckFrame): void {
    if (ack.ref && this.conn?.settle(ack.ref, ack)) return;
    const item = ack.ref ? this.outbox.settle(ack.ref, { ack }) : undefined;
    if (item?.type.startsWith("contact_") && ack.data && this.replica.upsert(ack.data as unknown as Contact)) {
      this.dirty.contacts = true;
    }
    this.events.emit("ack", ack);
  }

  private failed(error: ErrorFrame): void {
    const ref = error.ref;
    if (ref && this.conn?.settle(ref, undefined, new LivespaceError(error.code, error.message, error.details, error.retry_after))) {
      return;
    }
    if (ref && this.outbox.has(ref)) {
      if (isRetryable(error)) {
        this.outbox.unmarkSent(ref);
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.flush(), Math.max(0.05, error.retry_after ?? 1) * 1000);
      } else if (error.code === "conflict") {
        this.conflicted(ref, error);
      } else {
        this.outbox.settle(ref, { error: new LivespaceError(error.code, error.message, error.details, error.retry_after) });
      }
    }
    this.events.emit("error", error);
  }

  private conflicted(ref: string, error: ErrorFrame): void {
    const item = this.outbox.pending.find((i) => i.ref === ref);
    const current = (error.details?.current ?? null) as Contact | null;
    if (current && this.replica.upsert(current)) this.dirty.contacts = true;
    const changes = (item?.data.changes ?? {}) as Record<string, unknown>;
    const fields = (error.details?.fields as string[] | undefined) ?? Object.keys(changes);
    const pick = (from: Record<string, unknown> | null) =>
      Object.fromEntries(fields.map((f) => [f, from ? from[f] : undefined]));
    const conflict: Conflict = Object.freeze({
      ref,
      contactId: String(item?.data.id ?? current?.id ?? ""),
      current,
      fields: Object.freeze([...fields]),
      yours: Object.freeze(pick(changes)),
      theirs: Object.freeze(pick(current)),
    });
    this.conflicts = [...this.conflicts, conflict];
    this.outbox.settle(ref, { error: new ConflictError(error.message, conflict, error.details) });
    this.events.emit("conflict", conflict);
  }

  private async completePresence(): Promise<void> {
    try {
      const users = await loadUsers(this.http, this.options.workspace, this.currentToken ?? (await this.freshToken()));
      this.replica.addPresence(users);
      this.dirty.presence = true;
      this.changed();
    } catch (error) {
      this.report(error);
    }
  }

  // ---- token refresh, typing expiry, notifications ----------------------------------------

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    const token = this.currentToken;
    if (!token || typeof this.token !== "function") return;
    const delay = refreshDelay(token, Date.now(), this.options.refreshLead);
    if (delay === undefined) return;
    this.refreshTimer = setTimeout(() => void this.refresh(), delay);
  }

  /** A new token over the open socket (`refresh`): no reconnect. */
  private async refresh(): Promise<void> {
    const conn = this.conn;
    try {
      const token = await resolveToken(this.token);
      if (!conn || conn !== this.conn) return;
      await conn.request("refresh", { token });
      this.currentToken = token;
      this.events.emit("refresh", { token });
      this.scheduleRefresh();
    } catch (error) {
      this.report(error);
      if (conn === this.conn) this.refreshTimer = setTimeout(() => void this.refresh(), 2_000);
    }
  }

  private scheduleTypingExpiry(): void {
    clearTimeout(this.typingTimer);
    const next = this.replica.nextTypingExpiry();
    if (next === undefined) return;
    this.typingTimer = setTimeout(() => {
      if (this.replica.expireTyping(Date.now())) {
        this.dirty.typing = true;
        this.changed();
      }
      this.scheduleTypingExpiry();
    }, Math.max(10, next - Date.now()));
  }

  /** Called after each socket message: one notification for all its frames. */
  private flushChanges(): void {
    if (this.dirty.contacts || this.dirty.presence || this.dirty.typing || !this.snapshot || !this.snapshotFresh()) {
      this.changed();
    }
  }

  private changed(): void {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      if (this.machine.phase === "replaying") return; // one notification when caught up
      for (const listener of this.listeners) {
        try {
          listener();
        } catch (error) {
          this.report(error);
        }
      }
    });
  }

  private report(error: unknown): void {
    if (this.events.has("warning")) this.events.emit("warning", error);
    else console.warn("livespace:", error);
  }

  // ---- browsers: network and visibility ---------------------------------------------------

  private watchBrowser(): (() => void) | undefined {
    const win = globalThis as unknown as { addEventListener?: Window["addEventListener"]; removeEventListener?: Window["removeEventListener"]; document?: Document };
    if (typeof win.addEventListener !== "function" || !win.document) return undefined;
    const online = () => this.input({ type: "network", online: true });
    const offline = () => this.input({ type: "network", online: false });
    const visible = () => {
      if (win.document?.visibilityState !== "visible") return;
      this.input({ type: "wake" });
      this.conn?.check();
    };
    win.addEventListener("online", online);
    win.addEventListener("offline", offline);
    win.document.addEventListener("visibilitychange", visible);
    return () => {
      win.removeEventListener?.("online", online);
      win.removeEventListener?.("offline", offline);
      win.document?.removeEventListener("visibilitychange", visible);
    };
  }
}

export type { WebSocketLike, WebSocketConstructor };
