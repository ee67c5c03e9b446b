// What the page knows beyond the client's snapshot (which contact is open, who edited
// what last) and the actions the views call. Views subscribe to topics and redraw their
// own part when it changes.

import {
  type Conflict, type Contact, type LivespaceClient, type Snapshot, type User, loadNotes,
  type Note,
} from "./live";
import { type Shown, shownContacts } from "./pending";

export const CALL_ID = "team-call";

type Topic = "contacts" | "presence" | "status" | "selection" | "typing" | "notes" | "conflicts";
type Status = "online" | "away" | "busy";

export class App {
  selected: string | null = null;
  inCall = false;
  private snap: Snapshot;
  private readonly listeners = new Map<Topic, Set<() => void>>();
  /** contact id -> who else changed it last (for "<name> changed this ...") */
  private readonly editors = new Map<string, string>();
  private typingTimer: number | undefined;
  private typingOn: string | null = null;
  private myStatus: Status = "online";

  constructor(readonly live: LivespaceClient, readonly base: string, readonly workspace: string,
              private readonly token: string) {
    this.snap = live.getSnapshot();
    live.subscribe(() => this.changed(live.getSnapshot()));
    live.on("contact_updated", (event) => {
      const id = event.data["id"];
      if (typeof id === "string" && event.actor && event.actor.id !== this.me?.id) {
        this.editors.set(id, event.actor.name || event.actor.id);
      }
    });
    live.on("note_added", () => this.emit("notes"));
    live.on("note_updated", () => this.emit("notes"));
    // the client's own hiccups (a storage refusal, a retry): not the person's problem
    live.on("warning", (warning) => console.info("livespace:", warning));
  }

  private changed(next: Snapshot): void {
    const prev = this.snap;
    if (next === prev) return;
    this.snap = next;
    const topics: Topic[] = [];
    if (next.contacts !== prev.contacts || next.pending !== prev.pending) topics.push("contacts");
    if (next.presence !== prev.presence || next.user !== prev.user) topics.push("presence");
    if (next.status !== prev.status || next.pending !== prev.pending) topics.push("status");
    if (next.typing !== prev.typing) topics.push("typing");
    if (next.pending !== prev.pending) topics.push("notes");
    if (next.conflicts !== prev.conflicts) topics.push("conflicts");
    this.emit(...topics);
  }

  /** Call `listener` when `topic` changes; returns a function that stops it. */
  on(topic: Topic, listener: () => void): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  emit(...topics: Topic[]): void {
    const called = new Set<() => void>();
    for (const topic of topics) {
      for (const listener of [...(this.listeners.get(topic) ?? [])]) {
        if (!called.has(listener)) {
          called.add(listener);
          listener();
        }
      }
    }
  }

  // ---- what the views read ----------------------------------------------------------

  get snapshot(): Snapshot {
    return this.snap;
  }

  get me(): User | undefined {
    return this.snap.user;
  }

  shownContacts(): Shown[] {
    return shownContacts(this.snap.contacts.values(), this.snap.pending);
  }

  contact(id: string): Contact | null {
    return this.snap.contacts.get(id) ?? null;
  }

  /** Everyone online, me first, then by name. */
  online(): User[] {
    const meId = this.me?.id;
    return [...this.snap.presence.values()].sort((a, b) =>
      a.id === meId ? -1 : b.id === meId ? 1 : displayName(a).localeCompare(displayName(b)),
    );
  }

  /** Other people whose open contact is `contactId`. */
  viewers(contactId: string): User[] {
    return this.online().filter((u) => u.viewing === contactId && u.id !== this.me?.id);
  }

  /** Other people typing on `contactId` now. */
  typists(contactId: string): User[] {
    const ids = this.snap.typing.get(contactId) ?? [];
    return ids.filter((id) => id !== this.me?.id)
      .map((id) => this.snap.presence.get(id) ?? { id, name: id });
  }

  /** The unresolved conflict on `contactId`, if any. */
  conflict(contactId: string): Conflict | undefined {
    return this.snap.conflicts.find((c) => c.contactId === contactId);
  }

  lastEditor(contactId: string): string | undefined {
    return this.editors.get(contactId);
  }

  notes(contactId: string): Promise<Note[]> {
    return loadNotes(this.base, this.workspace, contactId, this.token);
  }

  // ---- actions ------------------------------------------------------------------------

  select(id: string | null): void {
    if (this.selected === id) return;
    this.stopTyping();
    this.selected = id;
    void this.live.setPresence({ viewing: id }).catch(() => {});
    this.emit("selection", "typing", "notes");
  }

  createContact(name: string): Promise<Contact> {
    return this.live.createContact({ name });
  }

  updateContact(id: string, changes: Record<string, string | null>,
                baseVersion: number): Promise<Contact> {
    return this.live.updateContact(id, changes, { baseVersion });
  }

  deleteContact(id: string): Promise<unknown> {
    if (this.selected === id) this.select(null);
    return this.live.deleteContact(id);
  }

  addNote(contactId: string, body: string): Promise<Record<string, unknown>> {
    return this.live.addNote(contactId, body);
  }

  setStatus(status: Status): void {
    this.myStatus = status;
    if (!this.inCall) void this.live.setPresence({ status }).catch(() => {});
  }

  toggleCall(): void {
    this.inCall = !this.inCall;
    const presence = this.inCall ? { status: "in_call" as const, call: CALL_ID }
                                 : { status: this.myStatus, call: null };
    void this.live.setPresence(presence).catch(() => {});
    this.emit("presence");
  }

  /** I typed on the open contact: the client renews at most every 2 s; 3 s idle ends it. */
  typingOnOpenContact(): void {
    const id = this.selected;
    if (!id) return;
    this.typingOn = id;
    this.live.setTyping(id, true);
    window.clearTimeout(this.typingTimer);
    this.typingTimer = window.setTimeout(() => this.stopTyping(), 3000);
  }

  stopTyping(): void {
    window.clearTimeout(this.typingTimer);
    if (this.typingOn) this.live.setTyping(this.typingOn, false);
    this.typingOn = null;
  }
}

export function displayName(user: Pick<User, "id" | "name" | "email">): string {
  return user.name || user.email || user.id;
}
