/** Errors the client rejects with: each carries the server's (or the client's) `code`. */

import type { Conflict } from "./types.js";

/**
 * `code` is one of the server's error codes (`validation_failed`, `forbidden`,
 * `not_found`, `conflict`, `rate_limited`, `unavailable`, `internal`, `unauthorized`...)
 * or one of the client's: `closed` (the client was closed), `offline` (an ephemeral
 * signal while not live), `too_large` (a frame over the server's limit), `http_<status>`.
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
