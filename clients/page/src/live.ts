// The page's way to the server: the TypeScript SDK, bundled from its source, and the one
// read it does not offer yet (a contact's notes), over the same REST API and auth.

import type { Contact } from "../../js/src/index.js";

export { ConflictError, LivespaceClient, LivespaceError } from "../../js/src/index.js";
export type {
  Conflict, Contact, DurableEvent, PendingMutation, Snapshot, Status, User,
} from "../../js/src/index.js";

export interface Note {
  readonly id: string;
  readonly contact_id: string;
  readonly body: string;
  readonly author?: { readonly id: string; readonly name?: string | null };
  readonly created_at: string;
  readonly version?: number;
}

/** A contact's notes, oldest first. The token goes in the Authorization header, never in
 * the URL. */
export async function loadNotes(base: string, workspace: string, contactId: string,
                                token: string): Promise<Note[]> {
  const enc = encodeURIComponent;
  const response = await fetch(
    `${base}/api/workspaces/${enc(workspace)}/contacts/${enc(contactId)}/notes`,
    { headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      signal: AbortSignal.timeout(15_000) },
  );
  const body = (await response.json().catch(() => ({}))) as
    { notes?: Note[]; error?: { message?: string } };
  if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  return body.notes ?? [];
}

export function text(contact: Contact | null | undefined, field: string): string {
  const value = contact?.[field];
  return typeof value === "string" ? value : "";
}

/** The workspace's name, from the caller's list of workspaces (null if unknown). */
export async function loadWorkspaceName(base: string, workspace: string,
                                        token: string): Promise<string | null> {
  const response = await fetch(`${base}/api/workspaces`, {
    headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    signal: AbortSignal.timeout(15_000),
  });
  if (!response.ok) return null;
  const body = (await response.json().catch(() => ({}))) as
    { workspaces?: { id?: string; name?: string }[] } | { id?: string; name?: string }[];
  const list = Array.isArray(body) ? body : body.workspaces ?? [];
  return list.find((w) => w.id === workspace)?.name ?? null;
}
