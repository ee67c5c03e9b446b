/** The HTTP side: the contact list (the snapshot) and the online users of a large room. */

import { LivespaceError } from "./errors.js";
import type { Contact, Note, User } from "./types.js";

export interface Http {
  /** `http(s)://host:port` (any path prefix kept), no trailing slash. */
  readonly base: string;
  readonly fetch: typeof globalThis.fetch;
  /** Milliseconds before a request is given up. */
  readonly timeout: number;
}

export interface ContactList {
  readonly contacts: Contact[];
  /** Every event up to `seq` is reflected in `contacts`, none after. */
  readonly seq: number;
  readonly epoch: string | undefined;
}

/** Statuses after which retrying with the same token cannot help. */
const FATAL: Readonly<Record<number, string>> = { 401: "unauthorized", 403: "forbidden", 404: "not_found" };

async function getJson(http: Http, path: string, token: string): Promise<Record<string, unknown>> {
  const response = await http.fetch(http.base + path, {
    headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    signal: AbortSignal.timeout(http.timeout),
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const error = (body.error ?? {}) as { code?: string; message?: string; details?: Record<string, unknown> };
    const code = FATAL[response.status] ?? error.code ?? `http_${response.status}`;
    const err = new LivespaceError(code, error.message ?? `GET ${path}: HTTP ${response.status}`, error.details);
    (err as { status?: number }).status = response.status;
    throw err;
  }
  return body;
}

/** Whether a failed snapshot load should stop the client (bad token, not a member). */
export function fatalCode(error: unknown): string | undefined {
  const status = (error as { status?: number } | null)?.status;
  return status !== undefined ? FATAL[status] : undefined;
}

const enc = encodeURIComponent;

/**
 * Every contact, page by page. Each page is one consistent read with its own `seq`; the
 * list's position is the first page's (the lowest): events after it are replayed, and
 * the upserts by version drop what a later page already had.
 */
export async function loadContacts(http: Http, workspace: string, token: string, pageSize = 1000): Promise<ContactList> {
  const contacts: Contact[] = [];
  let seq: number | undefined;
  let epoch: string | undefined;
  let after: string | undefined;
  for (;;) {
    const query = `limit=${pageSize}${after ? `&after=${enc(after)}` : ""}`;
    const page = await getJson(http, `/api/workspaces/${enc(workspace)}/contacts?${query}`, token);
    if (typeof page.seq !== "number") {
      throw new LivespaceError("protocol", "the contact list carries no seq: the server predates lists with positions");
    }
    contacts.push(...((page.contacts ?? []) as Contact[]));
    seq = seq === undefined ? page.seq : Math.min(seq, page.seq);
    if (epoch === undefined && typeof page.epoch === "string") epoch = page.epoch;
    if (typeof page.next !== "string" || !page.next) break;
    after = page.next;
  }
  return { contacts, seq, epoch };
}

/** A contact's notes, oldest first (one consistent read, like the contact list). */
export async function loadNotes(http: Http, workspace: string, contactId: string, token: string): Promise<Note[]> {
  const body = await getJson(http, `/api/workspaces/${enc(workspace)}/contacts/${enc(contactId)}/notes`, token);
  return Array.isArray(body.notes) ? (body.notes as Note[]) : [];
}

/** The online users of a workspace (when `welcome.presence` was truncated). */
export async function loadUsers(http: Http, workspace: string, token: string): Promise<User[]> {
  const body = await getJson(http, `/ws/workspace/${enc(workspace)}/users`, token);
  const users = body.users ?? body.online ?? [];
  return Array.isArray(users) ? (users as User[]) : [];
}

/** `http://h:p/x` -> `ws://h:p/x` (and https -> wss). */
export function socketBase(base: string): string {
  if (base.startsWith("https://")) return "wss://" + base.slice(8);
  if (base.startsWith("http://")) return "ws://" + base.slice(7);
  throw new TypeError(`url must start with http:// or https://, got ${JSON.stringify(base)}`);
}
