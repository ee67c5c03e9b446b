// What the page knows beyond the client's snapshot (which contact is open, who edited
// what last) and the actions the views call. Views subscribe to topics and redraw their
// own part when it changes.

import {
  type Conflict, type Contact, type LivespaceClient, type Snapshot, type User, loadNotes,
  type Note,
} from "./live";
import { type Shown, shownContacts } from "./pending";

type Topic = "contacts" | "presence" | "status" | "selection" | "typing" | "notes" | "conflicts";
type Status = "online" | "away" | "busy";

export class App {
  selected: string | null = null;
  inCall = false;
  private snap: Snapshot;
  private readonly listeners = new Map<Topic, Set<() => void>>();
  /** contact id -> who else changed it last (for "<name> changed this ...") */
  private readonly editors = new Map<string, string>();
  /** contact id -> note id -> note: what was loaded and what arrived since */
  private readonly knownNotes = new Map<string, Map<string, Note>>();
  private readonly loadedNotes = new Set<string>();
  private typingTimer: number | undefined;
  private typingOn: string | null = null;
  private myStatus: Status = "online";

  constructor(readonly live: LivespaceClient, readonly base: string, readonly workspace: string,
              readonly token: string) {
    this.snap = live.getSnapshot();
    live.subscribe(() => this.changed(live.getSnapshot()));
    live.on("contact_updated", (event) => {
      const id = event.data["id"];
      if (typeof id === "string" && event.actor && event.actor.id !== this.me?.id) {
        this.editors.set(id, event.actor.name || event.actor.id);
      }
    });
    const noted = (event: { data: Record<string, unknown> }): void => {
      this.rememberNote(event.data as unknown as Note);
      this.emit("notes");
    };
    live.on("note_added", noted);
    live.on("note_updated", noted);
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

  /** Viewers see everything live but change nothing (the server refuses their mutations). */
  get readOnly(): boolean {
    return this.snap.user?.role === "viewer";
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

  /** The notes of `contactId` known so far, oldest first; `loaded` once fetched. */
  notesOf(contactId: string): { notes: Note[]; loaded: boolean } {
    const notes = [...(this.knownNotes.get(contactId)?.values() ?? [])].sort(
      (a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
    return { notes, loaded: this.loadedNotes.has(contactId) };
  }

  /** Fetch the notes of `contactId` (merged with those that arrived live meanwhile). */
  async loadNotes(contactId: string): Promise<void> {
    const notes = await loadNotes(this.base, this.workspace, contactId, this.token);
    for (const note of notes) this.rememberNote(note);
    this.loadedNotes.add(contactId);
    this.emit("notes");
  }

  rememberNote(note: Note): void {
    if (typeof note.id !== "string" || typeof note.contact_id !== "string") return;
    let notes = this.knownNotes.get(note.contact_id);
    if (!notes) this.knownNotes.set(note.contact_id, (notes = new Map()));
    const known = notes.get(note.id);
    if (!known || (note.version ?? 0) >= (known.version ?? 0)) notes.set(note.id, note);
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

  async addNote(contactId: string, body: string): Promise<void> {
    this.rememberNote((await this.live.addNote(contactId, body)) as unknown as Note);
    this.emit("notes");
  }

  setStatus(status: Status): void {
    this.myStatus = status;
    if (!this.inCall) void this.live.setPresence({ status }).catch(() => {});
  }

  /** The workspace's one call: joining shows me as `in_call` to everyone. (A call id, for
   * several calls at once, is the protocol's `call` field; one call needs none.) */
  toggleCall(): void {
    this.inCall = !this.inCall;
    void this.live.setPresence({ status: this.inCall ? "in_call" : this.myStatus })
      .catch(() => {});
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
