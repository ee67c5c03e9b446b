/** Errors the client rejects with: each carries the server's (or the client's) `code`. */

import type { Conflict, Contact } from "./types.js";

/**
 * `code` is one of the server's error codes (`validation_failed`, `forbidden`,
 * `not_found`, `conflict`, `rate_limited`, `unavailable`, `internal`, `unauthorized`...)
 * or one of the client's: `closed` (the client was closed), `offline` (an ephemeral
 * signal while not live), `too_large` (a frame over the server's limit), `invalid_socket`
 * (the WebSocket constructor refused the URL or token), `protocol` (the server does not
 * speak this contract), `http_<status>`.
 */
export class LivespaceError extends Error {
  override readonly name: string = "LivespaceError";
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  readonly retryAfter: number | undefined;

  constructor(code: string, message: string, details?: Record<string, unknown>, retryAfter?: number) {
    super(message);
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

/** A `contact_updated` refused because a field it changes moved on since `baseVersion`. */
export class ConflictError extends LivespaceError {
  override readonly name = "ConflictError";
  readonly conflict: Conflict;

  constructor(message: string, conflict: Conflict, details?: Record<string, unknown>) {
    super("conflict", message, details);
    this.conflict = conflict;
  }
}

/** The conflict an `error` frame (code `conflict`) describes, for the update `changes` of `id`. */
export function conflictOf(
  ref: string,
  id: string,
  changes: Readonly<Record<string, unknown>>,
  details: Record<string, unknown> | undefined,
): Conflict {
  const current = (details?.current ?? null) as Contact | null;
  const fields = Array.isArray(details?.fields) ? (details.fields as string[]) : Object.keys(changes);
  const pick = (from: Readonly<Record<string, unknown>> | null) =>
    Object.freeze(Object.fromEntries(fields.map((f) => [f, from ? from[f] : undefined])));
  return Object.freeze({
    ref,
    contactId: id || String(current?.id ?? ""),
    current,
    fields: Object.freeze([...fields]),
    yours: pick(changes),
    theirs: pick(current),
  });
}
