/** The HTTP side: the contact list (the snapshot) and the online users of a large room. */

import { LivespaceError } from "./errors.js";
import type { Contact, User } from "./types.js";

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
  const list = await loadPages(http, workspace, token, pageSize);
  if (list.seq === undefined) return loadWithHead(http, workspace, token, pageSize);
  return list as ContactList;
}

async function loadPages(
  http: Http,
  workspace: string,
  token: string,
  pageSize: number,
): Promise<{ contacts: Contact[]; seq: number | undefined; epoch: string | undefined }> {
  const contacts: Contact[] = [];
  let seq: number | undefined;
  let epoch: string | undefined;
  let after: string | undefined;
  for (;;) {
    const query = `limit=${pageSize}${after ? `&after=${enc(after)}` : ""}`;
    const page = await getJson(http, `/api/workspaces/${enc(workspace)}/contacts?${query}`, token);
    contacts.push(...((page.contacts ?? []) as Contact[]));
    const pageSeq = page.seq;
    if (typeof pageSeq === "number") seq = seq === undefined ? pageSeq : Math.min(seq, pageSeq);
    if (epoch === undefined && typeof page.epoch === "string") epoch = page.epoch;
    if (typeof page.next !== "string" || !page.next) break;
    after = page.next;
  }
  return { contacts, seq, epoch };
}

/**
 * For a server whose lists carry no `seq` (before the contract's list positions): read
 * the log's head first, then the list, which reflects at least every event up to it.
 */
async function loadWithHead(http: Http, workspace: string, token: string, pageSize: number): Promise<ContactList> {
  let head: number;
  try {
    const page = await getJson(http, `/api/workspaces/${enc(workspace)}/events?since=0&limit=1`, token);
    head = Number(page.head_seq ?? 0);
  } catch (error) {
    const details = (error as LivespaceError).details;
    if (typeof details?.head_seq !== "number") throw error;
    head = details.head_seq;
  }
  const list = await loadPages(http, workspace, token, pageSize);
  return { contacts: list.contacts, seq: head, epoch: list.epoch };
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
