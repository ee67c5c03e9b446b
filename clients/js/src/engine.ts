/**
 * The client's engine: it drives the state machine ({@link step}) by carrying out its
 * effects (fetch the snapshot, open and close sockets, wait), and applies the server's
 * frames to the {@link Replica} and the {@link Outbox}. Internal: `LivespaceClient` is
 * the surface over it.
 */

import { initiallyOnline, watchBrowser } from "./browser.js";
import { Connection, type WebSocketConstructor } from "./connection.js";
import { Emitter } from "./emitter.js";
import { ConflictError, LivespaceError, conflictOf } from "./errors.js";
import { type Effect, type Input, type MachineState, initialState, statusOf, step } from "./machine.js";
import { Outbox, isRetryable } from "./outbox.js";
import { Replica } from "./replica.js";
import { type Http, fatalCode, loadContacts, loadUsers } from "./rest.js";
import { SnapshotCache } from "./snapshot.js";
import type { ClientEvents, DEFAULTS } from "./surface.js";
import { type TokenSource, refreshDelay, resolveToken, tokenExpiry, tokenUser } from "./token.js";
import type {
  AckFrame, Conflict, Contact, DurableEvent, ErrorFrame, Frame, PresenceFrame, TypingFrame, User, Welcome,
} from "./types.js";
import { DURABLE_TYPES } from "./types.js";

const DURABLE: ReadonlySet<string> = new Set(DURABLE_TYPES);
/** A page that wakes up or a network that comes back: the socket must answer a ping within this. */
const PROBE_MS = 3_000;
/** How long going live waits for the stored queue to be read. */
const RESTORE_WAIT_MS = 2_000;

export type Settings = { -readonly [K in keyof typeof DEFAULTS]: (typeof DEFAULTS)[K] extends boolean ? boolean : number } & {
  workspace: string;
};

export interface Wiring {
  readonly settings: Settings;
  readonly token: TokenSource;
  readonly http: Http;
  readonly wsBase: string;
  readonly WebSocket: WebSocketConstructor;
  readonly outbox: Outbox;
}

export class Engine {
  readonly replica = new Replica();
  readonly events = new Emitter<ClientEvents>((e) => this.report(e));
  readonly view = new SnapshotCache(this.replica);
  readonly listeners = new Set<() => void>();
  readonly outbox: Outbox;
  machine: MachineState = initialState(initiallyOnline());
  conn: Connection | undefined;
  me: User | undefined;
  lastError: LivespaceError | undefined;
  conflicts: readonly Conflict[] = [];
  /** The presence this client asked for, sent again after each reconnect. */
  presenceWanted: Record<string, unknown> | undefined;
  private connectWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  private attemptId = 0;
  private currentToken: string | undefined;
  private replayTo = 0;
  private compactedReplay = false;
  private waitTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private notifyQueued = false;
  private readonly inputs: Input[] = [];
  private stepping = false;
  private detachBrowser: (() => void) | undefined;

  constructor(private readonly w: Wiring) {
    this.outbox = w.outbox;
  }

  get http(): Http {
    return this.w.http;
  }

  get workspace(): string {
    return this.w.settings.workspace;
  }

  get status() {
    return statusOf(this.machine.phase);
  }

  // ---- lifecycle --------------------------------------------------------------------------

  /** Resolves once live; rejects if the client stops first. */
  connect(): Promise<void> {
    const phase = this.machine.phase;
    if (phase === "live") return Promise.resolve();
    if (phase === "closed") return Promise.reject(this.lastError ?? new LivespaceError("closed", "the client was closed"));
    const done = new Promise<void>((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
    if (phase === "idle") {
      this.detachBrowser = watchBrowser({
        online: () => {
          this.input({ type: "network", online: true });
          this.conn?.probe(PROBE_MS); // a network change can leave a socket half-dead
        },
        offline: () => this.input({ type: "network", online: false }),
        visible: () => {
          this.input({ type: "wake" });
          this.conn?.probe(PROBE_MS); // after a sleep, the socket may be gone unnoticed
        },
      });
      this.input({ type: "connect" });
    }
    return done;
  }

  /** Feed the machine; an input that arrives while one is handled (from an effect or a
   *  handler) waits its turn, so transitions and their `status` events stay in order. */
  input(input: Input): void {
    this.inputs.push(input);
    if (this.stepping) return;
    this.stepping = true;
    try {
      for (let next = this.inputs.shift(); next; next = this.inputs.shift()) this.transition(next);
    } finally {
      this.stepping = false;
    }
  }

  private transition(input: Input): void {
    const before = this.machine;
    const [next, effects] = step(before, input, this.w.settings);
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

  /** The token of the current connection (a new one if there is none yet). */
  async token(): Promise<string> {
    return this.currentToken ?? this.freshToken();
  }

  private async freshToken(): Promise<string> {
    this.currentToken = await resolveToken(this.w.token);
    return this.currentToken;
  }

  private async loadSnapshot(attempt: number): Promise<void> {
    try {
      const token = await this.freshToken();
      // The queue is this user's: its scope is known from the first token. It is read
      // beside the list; a storage slower than that (a blocked IndexedDB) does not hold
      // the client back: what it holds is sent when it comes.
      const restoring = this.outbox.restore(`${this.w.http.base}|${this.w.settings.workspace}|${tokenUser(token) ?? ""}`)
        .catch((e: unknown) => this.report(e))
        .then(() => {
          this.changed();
          this.flush();
        });
      const list = await loadContacts(this.w.http, this.w.settings.workspace, token, this.w.settings.pageSize);
      await Promise.race([restoring, new Promise((r) => setTimeout(r, RESTORE_WAIT_MS))]);
      if (attempt !== this.attemptId || this.machine.phase !== "snapshot") return;
      this.replica.loadSnapshot(list.contacts, list.seq, list.epoch);
      this.view.touch("contacts");
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
    if (this.w.settings.batch) params.set("batch", "1");
    const url = `${this.w.wsBase}/ws/workspace/${encodeURIComponent(this.w.settings.workspace)}?${params}`;
    this.outbox.resetSent();
    try {
      this.conn = new Connection(this.w.WebSocket, url, token, this.w.settings.connectTimeout, {
        frame: (frame) => this.handle(frame),
        flushed: () => this.changed(),
        closed: (code, reason) => {
          this.conn = undefined;
          this.clearSocketTimers();
          this.input({ type: "socket_closed", code, reason });
        },
        dead: (reason) => this.input({ type: "dead", reason }),
      });
    } catch (error) {
      // the constructor refused (a bad URL, a token that is no subprotocol, a page's
      // security policy): trying again cannot help
      this.input({ type: "fatal", code: "invalid_socket", message: `cannot open the socket: ${String(error)}` });
    }
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
  }

  private wentLive(): void {
    this.flush();
    if (this.presenceWanted) this.conn?.send({ type: "presence_update", data: this.presenceWanted });
    this.conn?.receipt(this.replica.seq, this.w.settings.receiptInterval);
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
  flush(): void {
    const conn = this.conn;
    if (!conn || this.machine.phase !== "live") return;
    for (const item of this.outbox.takeUnsent()) conn.send({ type: item.type, ref: item.ref, data: item.data });
  }

  // ---- frames -----------------------------------------------------------------------------

  private handle(frame: Frame): void {
    const type = frame.type;
    if (DURABLE.has(type)) {
      this.durable(frame as unknown as DurableEvent);
      return;
    }
    if (type === "ack") return this.acked(frame as unknown as AckFrame);
    if (type === "error") return this.failed(frame as unknown as ErrorFrame);
    if (type === "presence") {
      if (this.replica.applyPresence(frame as unknown as PresenceFrame)) this.view.touch("presence");
    } else if (type === "typing") {
      if (this.replica.applyTyping(frame as unknown as TypingFrame, Date.now())) {
        this.view.touch("typing");
        this.scheduleTypingExpiry();
      }
    } else if (type === "welcome") {
      this.welcomed(frame as unknown as Welcome);
    } else if (type === "role_changed" && this.me) {
      this.me = Object.freeze({ ...this.me, role: frame.role as string });
    }
    this.events.emit(type as keyof ClientEvents, frame as never);
  }

  private welcomed(welcome: Welcome): void {
    this.me = Object.freeze({ ...welcome.user });
    this.replica.resetPresence(welcome.presence ?? []);
    this.view.touch("presence");
    if (welcome.presence_truncated) void this.completePresence();
    this.conn?.setHeartbeat((welcome.heartbeat_s ?? this.w.settings.heartbeat) * 1000);
    const known = this.replica.epoch;
    const staleEpoch = welcome.epoch !== undefined && known !== undefined && welcome.epoch !== known;
    if (known === undefined) this.replica.epoch = welcome.epoch;
    const replay = welcome.replay;
    this.replayTo = replay?.to_seq ?? this.replica.seq;
    this.compactedReplay = replay?.compacted === true;
    const behind = replay ? Math.max(0, replay.to_seq - this.replica.seq) : 0;
    const resync = welcome.resync_required === true || staleEpoch;
    this.input({ type: "welcome", resync, behind, compacted: this.compactedReplay });
    if (this.machine.phase === "live" || this.machine.phase === "replaying") this.scheduleRefresh();
  }

  private durable(event: DurableEvent): void {
    const phase = this.machine.phase;
    if (phase !== "live" && phase !== "replaying") return; // a reopening socket's leftovers
    const result = this.replica.applyEvent(event, phase === "live" || !this.compactedReplay);
    if (result === "gap") return this.input({ type: "gap" });
    if (result === "duplicate") return;
    if (event.type.startsWith("contact_")) this.view.touch("contacts");
    this.events.emit(event.type, event);
    this.events.emit("event", event);
    if (phase === "replaying" && this.replica.seq >= this.replayTo) this.input({ type: "caught_up" });
    else if (phase === "live") this.conn?.receipt(this.replica.seq, this.w.settings.receiptInterval);
  }

  private acked(ack: AckFrame): void {
    if (ack.ref && this.conn?.settle(ack.ref, ack)) return;
    const item = ack.ref ? this.outbox.settle(ack.ref, { ack }) : undefined;
    if (item?.type.startsWith("contact_") && ack.data && this.replica.upsert(ack.data as unknown as Contact)) {
      this.view.touch("contacts");
    }
    this.events.emit("ack", ack);
  }

  private failed(frame: ErrorFrame): void {
    const ref = frame.ref;
    const error = new LivespaceError(frame.code, frame.message, frame.details, frame.retry_after);
    if (ref && this.conn?.settle(ref, undefined, error)) return;
    const item = ref ? this.outbox.pending.find((i) => i.ref === ref) : undefined;
    if (ref && item) {
      if (isRetryable(frame)) {
        this.outbox.unmarkSent(ref); // not applied: the same ref again after retry_after
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.flush(), Math.max(0.05, frame.retry_after ?? 1) * 1000);
      } else if (frame.code === "conflict") {
        const changes = (item.data.changes ?? {}) as Record<string, unknown>;
        const conflict = conflictOf(ref, String(item.data.id ?? ""), changes, frame.details);
        if (conflict.current && this.replica.upsert(conflict.current)) this.view.touch("contacts");
        this.conflicts = [...this.conflicts, conflict];
        this.outbox.settle(ref, { error: new ConflictError(frame.message, conflict, frame.details) });
        this.events.emit("conflict", conflict);
      } else {
        this.outbox.settle(ref, { error });
      }
    }
    this.events.emit("error", frame);
  }

  private async completePresence(): Promise<void> {
    try {
      const users = await loadUsers(this.w.http, this.w.settings.workspace, await this.token());
      this.replica.addPresence(users);
      this.view.touch("presence");
      this.changed();
    } catch (error) {
      this.report(error);
    }
  }

  // ---- token refresh, typing expiry, notifications ----------------------------------------

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    const token = this.currentToken;
    if (!token || typeof this.w.token !== "function") return;
    const delay = refreshDelay(token, Date.now(), this.w.settings.refreshLead);
    if (delay !== undefined) this.refreshTimer = setTimeout(() => void this.refresh(), delay);
  }

  /** A new token over the open socket (`refresh`): no reconnect. */
  private async refresh(): Promise<void> {
    const conn = this.conn;
    try {
      const token = await resolveToken(this.w.token);
      if (!conn || conn !== this.conn) return;
      if ((tokenExpiry(token) ?? Infinity) <= (tokenExpiry(this.currentToken ?? "") ?? -Infinity)) {
        // the function gave no newer token (yet): ask again shortly, until the server's 4010
        const left = (tokenExpiry(this.currentToken ?? "") ?? 0) * 1000 - Date.now();
        this.refreshTimer = setTimeout(() => void this.refresh(), Math.max(250, Math.min(5_000, left / 2)));
        return;
      }
      await conn.request("refresh", { token });
      this.currentToken = token;
      this.events.emit("refresh", { token });
      this.scheduleRefresh();
    } catch (error) {
      this.report(error);
      if (conn && conn === this.conn) this.refreshTimer = setTimeout(() => void this.refresh(), 2_000);
    }
  }

  private scheduleTypingExpiry(): void {
    clearTimeout(this.typingTimer);
    const next = this.replica.nextTypingExpiry();
    if (next === undefined) return;
    this.typingTimer = setTimeout(() => {
      if (this.replica.expireTyping(Date.now())) {
        this.view.touch("typing");
        this.changed();
      }
      this.scheduleTypingExpiry();
    }, Math.max(10, next - Date.now()));
  }

  /** Tell the subscribers, once per turn of the event loop (none while replaying). */
  changed(): void {
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

  report(error: unknown): void {
    if (this.events.has("warning")) this.events.emit("warning", error);
    else console.warn("livespace:", error);
  }
}
