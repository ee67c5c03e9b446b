/**
 * `getSnapshot()`'s cache: one frozen object until something changes, rebuilt lazily when
 * asked; the parts that did not change (contacts, presence, typing) are the same objects
 * as in the previous snapshot, so a UI memoised on them re-renders only what changed.
 */

import type { Replica } from "./replica.js";
import type { Snapshot } from "./surface.js";

/** The scalar parts, compared by identity. */
export type SnapshotHead = Omit<Snapshot, "contacts" | "presence" | "typing">;

export class SnapshotCache {
  private current: Snapshot | undefined;
  private dirty = { contacts: true, presence: true, typing: true };

  constructor(private readonly replica: Replica) {}

  /** Mark a part changed (the next snapshot copies it). */
  touch(part: "contacts" | "presence" | "typing"): void {
    this.dirty[part] = true;
  }

  /** Whether the last snapshot still describes the state. */
  fresh(head: SnapshotHead): boolean {
    const s = this.current;
    if (!s || this.dirty.contacts || this.dirty.presence || this.dirty.typing) return false;
    return (Object.keys(head) as (keyof SnapshotHead)[]).every((key) => s[key] === head[key]);
  }

  get(head: SnapshotHead): Snapshot {
    if (this.current && this.fresh(head)) return this.current;
    const prev = this.current;
    const r = this.replica;
    this.current = Object.freeze({
      ...head,
      contacts: !prev || this.dirty.contacts ? new Map(r.contacts) : prev.contacts,
      presence: !prev || this.dirty.presence ? new Map(r.presence) : prev.presence,
      typing: !prev || this.dirty.typing ? r.typingLists() : prev.typing,
    });
    this.dirty = { contacts: false, presence: false, typing: false };
    return this.current;
  }
}
