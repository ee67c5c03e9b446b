// What the page draws for changes the server has not acknowledged yet: the client's
// queue (kept in IndexedDB, so it survives a reload) laid over its contacts, marked
// pending. Nothing here is kept: it is derived from the client's snapshot each time.

import type { Contact, PendingMutation } from "./live";

/** A contact as the page shows it. */
export interface Shown {
  readonly id: string;
  readonly contact: Contact | null; // null: created here, not acknowledged yet
  readonly name: string;
  readonly email: string;
  readonly phone: string;
  readonly company: string;
  readonly pending: boolean;
}

export interface PendingNote {
  readonly ref: string;
  readonly contactId: string;
  readonly body: string;
  readonly createdAt: number;
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** The contacts to show, by name: pending edits merged, pending deletes hidden, pending
 * creates added. */
export function shownContacts(contacts: Iterable<Contact>,
                              pending: readonly PendingMutation[]): Shown[] {
  const edits = new Map<string, Record<string, unknown>>();
  const deleted = new Set<string>();
  const created: Shown[] = [];
  for (const m of pending) {
    const data = m.data as Record<string, unknown>;
    if (m.type === "contact_updated" && typeof data.id === "string") {
      const changes = (data.changes ?? {}) as Record<string, unknown>;
      edits.set(data.id, { ...(edits.get(data.id) ?? {}), ...changes });
    } else if (m.type === "contact_deleted" && typeof data.id === "string") {
      deleted.add(data.id);
    } else if (m.type === "contact_created") {
      created.push({ id: m.ref, contact: null, name: str(data.name), email: str(data.email),
                     phone: str(data.phone), company: str(data.company), pending: true });
    }
  }
  const shown: Shown[] = [];
  for (const contact of contacts) {
    if (contact.deleted || deleted.has(contact.id)) continue;
    const mine = edits.get(contact.id);
    const field = (name: string): string => str(mine && name in mine ? mine[name] : contact[name]);
    shown.push({ id: contact.id, contact, name: field("name"), email: field("email"),
                 phone: field("phone"), company: field("company"), pending: Boolean(mine) });
  }
  shown.push(...created);
  return shown.sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: "base" }));
}

export function pendingNotes(pending: readonly PendingMutation[], contactId: string): PendingNote[] {
  const out: PendingNote[] = [];
  for (const m of pending) {
    const data = m.data as Record<string, unknown>;
    if (m.type === "note_added" && data.contact_id === contactId) {
      out.push({ ref: m.ref, contactId, body: str(data.body), createdAt: m.createdAt });
    }
  }
  return out;
}
