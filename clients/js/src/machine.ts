/**
 * The connection's state machine, pure: `step(state, input)` returns the next state and
 * the effects the client must carry out (load the snapshot, open or close a socket, wait).
 * No timers, sockets or promises here, so every transition is tested by feeding inputs.
 *
 * ```
 *            connect()
 *   idle ─────────────► snapshot ──loaded──► opening ──welcome──► replaying ──caught up──► live
 *                        ▲   │                ▲  │ │                  │                    │ │
 *                        │   │ failed         │  │ └─ at head ────────┼────────────────────┘ │
 *        resync_required │   ▼                │  │                    │                      │
 *        (from opening)  │ waiting ──retry────┘  └───── closed / dead / offline ─────────────┘
 *                        └── (retry when a snapshot is needed)   (all go to waiting)
 *   any ──close(), 4001/4003, or a socket that cannot even be made──► closed
 * ```
 * `waiting` holds a reconnect timer (jittered backoff), or none while the browser is
 * offline (then `online` retries at once). A page that becomes visible retries at once.
 */

import { type BackoffOptions, promptDelay, reconnectDelay } from "./backoff.js";
import { CLOSE, STOP_CODES, closeAction } from "./codes.js";
import type { Status } from "./types.js";

export type Phase = "idle" | "snapshot" | "opening" | "replaying" | "live" | "waiting" | "closed";

export interface MachineState {
  readonly phase: Phase;
  /** Failed attempts since the last time live: the backoff's exponent. */
  readonly attempt: number;
  /** The next attempt loads the snapshot first (at start, after resync_required). */
  readonly needSnapshot: boolean;
  /** The next socket asks for a compacted replay (the client is far behind). */
  readonly compact: boolean;
  /** The runtime's network state (browsers: navigator.onLine). */
  readonly online: boolean;
  /** Why the last transition happened, for the `status` event and debugging. */
  readonly reason: string;
}

export type Input =
  | { type: "connect" }
  | { type: "snapshot_loaded" }
  | { type: "snapshot_failed"; fatal?: string | undefined; message?: string }
  | { type: "welcome"; resync: boolean; behind: number; compacted: boolean }
  | { type: "caught_up" }
  | { type: "socket_closed"; code: number; reason?: string }
  | { type: "dead"; reason?: string }
  | { type: "gap" }
  | { type: "retry" }
  | { type: "network"; online: boolean }
  | { type: "wake" }
  | { type: "close" }
  | { type: "fatal"; code: string; message: string };

export type Effect =
  | { do: "load_snapshot" }
  | { do: "open_socket"; compact: boolean }
  | { do: "close_socket"; code: number; reason: string }
  | { do: "wait"; delay: number | null }
  | { do: "cancel_wait" }
  | { do: "went_live" }
  | { do: "resync" }
  | { do: "stop"; code: string; message: string };

export interface MachineOptions extends BackoffOptions {
  /** Reconnect with `compact=1` when a resume is more than this many events behind. Default 1000. */
  compactThreshold?: number;
  random?: () => number;
}

export function initialState(online = true): MachineState {
  return { phase: "idle", attempt: 0, needSnapshot: true, compact: false, online, reason: "new" };
}

/** What the application sees of a phase. */
export function statusOf(phase: Phase): Status {
  switch (phase) {
    case "snapshot":
    case "opening":
    case "replaying":
      return "connecting";
    case "live":
      return "live";
    case "closed":
      return "closed";
    default:
      return "offline";
  }
}

const CONNECTED: ReadonlySet<Phase> = new Set(["opening", "replaying", "live"]);

type Step = [MachineState, Effect[]];

export function step(state: MachineState, input: Input, options: MachineOptions = {}): Step {
  const s = state;
  if (s.phase === "closed") return [s, []];
  const random = options.random ?? Math.random;
  const to = (patch: Partial<MachineState>, ...effects: Effect[]): Step => [
    { ...s, ...patch },
    effects,
  ];
  /** The next attempt, or waiting for the network when there is none. */
  const attempt = (patch: Partial<MachineState> = {}): Step => {
    const next = { ...s, ...patch };
    if (!next.online) return [{ ...next, phase: "waiting" }, [{ do: "wait", delay: null }]];
    if (next.needSnapshot) return [{ ...next, phase: "snapshot" }, [{ do: "load_snapshot" }]];
    return [{ ...next, phase: "opening" }, [{ do: "open_socket", compact: next.compact }]];
  };
  /** Wait before the next attempt; `prompt` for a short random delay on the first retry. */
  const wait = (reason: string, prompt: boolean, ...before: Effect[]): Step => {
    const delay =
      prompt && s.attempt === 0 ? promptDelay(options, random) : reconnectDelay(s.attempt, options, random);
    return to(
      { phase: "waiting", attempt: s.attempt + 1, reason },
      ...before,
      { do: "wait", delay: s.online ? delay : null },
    );
  };

  switch (input.type) {
    case "connect":
      return s.phase === "idle" ? attempt({ reason: "connect" }) : [s, []];

    case "close":
      return to(
        { phase: "closed", reason: "closed by the application" },
        { do: "cancel_wait" },
        { do: "close_socket", code: CLOSE.NORMAL, reason: "client closed" },
        { do: "stop", code: "closed", message: "the client was closed" },
      );

    case "fatal":
      return to(
        { phase: "closed", reason: input.message },
        { do: "cancel_wait" },
        { do: "close_socket", code: CLOSE.NORMAL, reason: "client stopped" },
        { do: "stop", code: input.code, message: input.message },
      );

    case "snapshot_loaded":
      if (s.phase !== "snapshot") return [s, []];
      return attempt({ needSnapshot: false, reason: "snapshot loaded" });

    case "snapshot_failed":
      if (s.phase !== "snapshot") return [s, []];
      if (input.fatal) {
        return to(
          { phase: "closed", reason: input.fatal },
          { do: "stop", code: input.fatal, message: input.message ?? input.fatal },
        );
      }
      return wait(input.message ?? "snapshot failed", false);

    case "welcome":
      if (s.phase !== "opening") return [s, []];
      if (input.resync) {
        return to(
          { phase: "snapshot", needSnapshot: true, compact: false, reason: "resync_required" },
          { do: "close_socket", code: CLOSE.REOPEN, reason: "reloading the snapshot" },
          { do: "resync" },
          { do: "load_snapshot" },
        );
      }
      if (!s.compact && !input.compacted && input.behind > (options.compactThreshold ?? 1000)) {
        return to(
          { compact: true, reason: `${input.behind} events behind: compacted catch-up` },
          { do: "close_socket", code: CLOSE.REOPEN, reason: "compacted catch-up" },
          { do: "open_socket", compact: true },
        );
      }
      if (input.behind === 0) return live(s, "at head");
      return to({ phase: "replaying", reason: `replaying ${input.behind}` });

    case "caught_up":
      return s.phase === "replaying" ? live(s, "caught up") : [s, []];

    case "socket_closed": {
      if (!CONNECTED.has(s.phase)) return [s, []];
      const action = closeAction(input.code);
      const why = `closed ${input.code}${input.reason ? `: ${input.reason}` : ""}`;
      if (action === "stop") {
        const code = STOP_CODES[input.code] ?? "closed";
        return to({ phase: "closed", reason: why }, { do: "stop", code, message: why });
      }
      return wait(why, action !== "backoff");
    }

    case "dead":
      if (!CONNECTED.has(s.phase)) return [s, []];
      return wait(input.reason ?? "connection dead", true, {
        do: "close_socket",
        code: CLOSE.DEAD,
        reason: "no frame for two heartbeats",
      });

    case "gap":
      if (s.phase !== "live" && s.phase !== "replaying") return [s, []];
      return to(
        { phase: "opening", reason: "a gap in seqs: resuming" },
        { do: "close_socket", code: CLOSE.REOPEN, reason: "resuming after a gap" },
        { do: "open_socket", compact: false },
      );

    case "retry":
      return s.phase === "waiting" ? attempt({ reason: "retry" }) : [s, []];

    case "wake":
      if (s.phase !== "waiting" || !s.online) return [s, []];
      return attemptAfterCancel(attempt({ reason: "page visible" }));

    case "network": {
      if (input.online === s.online) return [s, []];
      if (input.online) {
        const next = { ...s, online: true };
        if (s.phase !== "waiting") return [next, []];
        return attemptAfterCancel(step(next, { type: "retry" }, options));
      }
      const offline = { ...s, online: false, reason: "network offline" };
      if (s.phase === "idle") return [offline, []];
      const effects: Effect[] = [{ do: "cancel_wait" }];
      if (CONNECTED.has(s.phase)) {
        effects.push({ do: "close_socket", code: CLOSE.NORMAL, reason: "network offline" });
      }
      effects.push({ do: "wait", delay: null });
      return [{ ...offline, phase: "waiting" }, effects];
    }
  }
}

function live(s: MachineState, reason: string): Step {
  return [{ ...s, phase: "live", attempt: 0, compact: false, reason }, [{ do: "went_live" }]];
}

function attemptAfterCancel([state, effects]: Step): Step {
  return [state, [{ do: "cancel_wait" }, ...effects]];
}
