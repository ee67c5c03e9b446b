/**
 * What the client does after each close code (the server's list: src/livespace/codes.py).
 *
 * - `stop`: the server will refuse again whatever we do (bad token, not a member): the
 *   client goes to `closed` and `connect()` rejects with the code.
 * - `prompt`: reconnect soon (a short random delay), resuming with `since`.
 * - `token`: the token expired: get a new one from the token function, then as `prompt`.
 * - `backoff`: reconnect after the jittered exponential delay, resuming with `since`.
 */
export type CloseAction = "stop" | "prompt" | "token" | "backoff";

export const CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  TOO_BIG: 1009,
  RESTARTING: 1012,
  UNAUTHORIZED: 4001,
  FORBIDDEN: 4003,
  POLICY: 4008,
  TOO_SLOW: 4009,
  TOKEN_EXPIRED: 4010,
  /** Sent by this client: no frame for two heartbeats, the connection is replaced. */
  DEAD: 4900,
  /** Sent by this client: reopening (compacted catch-up, snapshot reload). */
  REOPEN: 4901,
} as const;

/** The error code a stop close is reported with. */
export const STOP_CODES: Readonly<Record<number, string>> = {
  [CLOSE.UNAUTHORIZED]: "unauthorized",
  [CLOSE.FORBIDDEN]: "forbidden",
};

export function closeAction(code: number): CloseAction {
  switch (code) {
    case CLOSE.UNAUTHORIZED:
    case CLOSE.FORBIDDEN:
      return "stop";
    case CLOSE.TOKEN_EXPIRED:
      return "token";
    case CLOSE.RESTARTING:
    case CLOSE.TOO_SLOW:
    case CLOSE.DEAD:
    case CLOSE.REOPEN:
      return "prompt";
    default: // 1000, 1001, 1006, 1009, 4008 and anything unknown
      return "backoff";
  }
}
