/**
 * The workspace as this client knows it: contacts, presence, typing, and the log position
 * `(epoch, seq)`. Pure: frames in, changes out; no sockets, no timers (time is a parameter).
 *
 * Rules (docs/protocol.md):
 * - durable events are deduplicated by `seq`: one at or below the position is ignored;
 * - contact events are upserts by `id` keeping the highest `version` (a compacted replay
 *   and a snapshot read in pages can bring an older version after a newer one);
 * - a deleted contact leaves the map, its version remembered so an older event cannot
 *   bring it back.
 */

import type { Contact, DurableEvent, PresenceFrame, TypingFrame, User } from "./types.js";

/** How long a typing indicator lasts without renewal (the server ends it after 5 s). */
export const TYPING_TTL_MS = 6_000;

export type Applied = "applied" | "duplicate" | "gap";

export class Replica {
  /** Contacts by id, without tombstones. */
  readonly contacts = new Map<string, Contact>();
  /** Online users by id. */
  readonly presence = new Map<string, User>();
  /** contact id -> (user id -> expiry time in ms). */
  readonly typing = new Map<string, Map<string, number>>();
  /** Versions of deleted contacts: an older event for one of them is stale. */
  private readonly deleted = new Map<string, number>();
  /** The last durable event applied (or the snapshot's position). */
  seq = 0;
  epoch: string | undefined = undefined;

  /** Replace the contacts with a snapshot that reflects every event up to `seq`. */
  loadSnapshot(contacts: Iterable<Contact>, seq: number, epoch: string | undefined): void {
    this.contacts.clear();
    this.deleted.clear();
    for (const contact of contacts) this.upsert(contact);
    this.seq = seq;
    this.epoch = epoch;
  }

  /**
   * Apply a durable event. `strict`: the event must be the next seq (live, not compacted);
   * a later one is reported as a `gap` and not applied, so the client resumes instead.
   */
  applyEvent(event: DurableEvent, strict: boolean): Applied {
    const seq = event.seq;
    if (seq <= this.seq) return "duplicate";
    if (strict && seq !== this.seq + 1) return "gap";
    this.seq = seq;
    if (event.type.startsWith("contact_")) this.upsert(event.data as unknown as Contact);
    return "applied";
  }

  /** Upsert one contact (from an event, an ack, a conflict or the snapshot); true if it changed. */
  upsert(raw: Contact): boolean {
    const id = raw.id;
    const version = raw.version;
    if (typeof id !== "string" || typeof version !== "number") return false;
    const known = this.contacts.get(id)?.version ?? this.deleted.get(id) ?? -Infinity;
    if (version <= known) return false;
    if (raw.deleted) {
      this.contacts.delete(id);
      this.deleted.set(id, version);
      return true;
    }
    let contact: Contact = raw;
    if ("changed" in raw) {
      const { changed: _changed, ...rest } = raw;
      contact = rest as Contact;
    }
    this.deleted.delete(id);
    this.contacts.set(id, Object.freeze(contact));
    return true;
  }

  /** The presence of a new connection (`welcome.presence`). */
  resetPresence(users: Iterable<User>): void {
    this.presence.clear();
    for (const user of users) this.presence.set(user.id, Object.freeze(user));
  }

  /** Add users to presence without clearing it (the rest of a truncated list). */
  addPresence(users: Iterable<User>): void {
    for (const user of users) {
      if (!this.presence.has(user.id)) this.presence.set(user.id, Object.freeze(user));
    }
  }

  /** A `presence` frame: join / leave / update, or a coalesced diff of them. */
  applyPresence(frame: PresenceFrame): boolean {
    const put = (user: User | undefined) => {
      if (user && typeof user.id === "string") this.presence.set(user.id, Object.freeze(user));
    };
    const drop = (user: User | undefined) => {
      if (user && typeof user.id === "string") this.presence.delete(user.id);
    };
    switch (frame.event) {
      case "join":
      case "update":
        put(frame.user);
        return true;
      case "leave":
        drop(frame.user);
        return true;
      case "diff":
        frame.joins?.forEach(put);
        frame.updates?.forEach(put);
        frame.leaves?.forEach(drop);
        return true;
      default:
        return false;
    }
  }

  /** A `typing` frame at time `now` (ms). */
  applyTyping(frame: TypingFrame, now: number): boolean {
    const users = this.typing.get(frame.contact_id);
    if (frame.is_typing) {
      const map = users ?? new Map<string, number>();
      map.set(frame.user_id, now + TYPING_TTL_MS);
      this.typing.set(frame.contact_id, map);
      return true;
    }
    if (!users?.delete(frame.user_id)) return false;
    if (users.size === 0) this.typing.delete(frame.contact_id);
    return true;
  }

  /** Drop typing indicators that were not renewed; true if any went. */
  expireTyping(now: number): boolean {
    let changed = false;
    for (const [contactId, users] of this.typing) {
      for (const [userId, until] of users) {
        if (until <= now) {
          users.delete(userId);
          changed = true;
        }
      }
      if (users.size === 0) this.typing.delete(contactId);
    }
    return changed;
  }

  /** The next time a typing indicator expires, or undefined when nobody types. */
  nextTypingExpiry(): number | undefined {
    let next: number | undefined;
    for (const users of this.typing.values()) {
      for (const until of users.values()) if (next === undefined || until < next) next = until;
    }
    return next;
  }

  /** Who is typing, per contact id, as plain lists. */
  typingLists(): Map<string, readonly string[]> {
    const out = new Map<string, readonly string[]>();
    for (const [contactId, users] of this.typing) out.set(contactId, Object.freeze([...users.keys()]));
    return out;
  }
}
