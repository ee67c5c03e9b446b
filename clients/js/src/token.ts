/** Tokens: where they come from, and when they run out (read from the JWT, not verified). */

/** A token, or a function that returns one (called at connect, reconnect and before `exp`). */
export type TokenSource = string | (() => string | Promise<string>);

export async function resolveToken(source: TokenSource): Promise<string> {
  const token = typeof source === "function" ? await source() : source;
  if (typeof token !== "string" || token.length === 0) {
    throw new TypeError("the token function must return a non-empty string");
  }
  return token;
}

function base64UrlDecode(part: string): string {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
  return globalThis.atob(padded);
}

/** The `exp` claim in seconds since 1970, or undefined when the token has none or is not a JWT. */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (!payload) return undefined;
  try {
    const exp = (JSON.parse(base64UrlDecode(payload)) as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

/** The `sub` / `user_id` / `id` claim, to name this user's outbox (undefined if none). */
export function tokenUser(token: string): string | undefined {
  const payload = token.split(".")[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(base64UrlDecode(payload)) as Record<string, unknown>;
    const id = claims.user_id ?? claims.sub ?? claims.id;
    return typeof id === "string" || typeof id === "number" ? String(id) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds from `now` until the token should be refreshed: `lead` before `exp`, but
 * never earlier than half its remaining life (a 10 s token is refreshed after 5 s).
 * Undefined when the token has no `exp`.
 */
export function refreshDelay(token: string, now: number, lead: number): number | undefined {
  const exp = tokenExpiry(token);
  if (exp === undefined) return undefined;
  const left = exp * 1000 - now;
  return Math.max(0, left - Math.min(lead, left / 2));
}
