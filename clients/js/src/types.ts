/** The shapes of the livespace protocol as this client sees them (docs/protocol.md). */

/** A contact as the server returns it (`id`, `version` and its fields). */
export interface Contact {
  readonly id: string;
  readonly version: number;
  readonly name: string;
  readonly email?: string | null;
  readonly phone?: string | null;
  readonly company?: string | null;
  readonly tags?: readonly string[];
  readonly fields?: Readonly<Record<string, unknown>>;
  readonly deleted?: boolean;
  readonly [key: string]: unknown;
}

/** A note on a contact (`note_added` / `note_updated` data, `GET .../notes`). */
export interface Note {
  readonly id: string;
  readonly contact_id: string;
  readonly body: string;
  readonly version?: number;
  readonly author?: { readonly id: string; readonly name?: string | null };
  readonly created_at?: string;
  readonly [key: string]: unknown;
}

/** An online user, from `welcome.presence` and `presence` frames. */
export interface User {
  readonly id: string;
  readonly email?: string | null;
  readonly name?: string | null;
  readonly role?: string;
  readonly status?: PresenceStatus;
  readonly viewing?: string | null;
  readonly call?: string | null;
  readonly connections?: number;
  readonly [key: string]: unknown;
}

export type PresenceStatus = "online" | "away" | "busy" | "in_call";

/** The connection as an application sees it (see README: the state machine). */
export type Status = "connecting" | "live" | "offline" | "closed";

export const DURABLE_TYPES = [
  "contact_created",
  "contact_updated",
  "contact_deleted",
  "note_added",
  "note_updated",
] as const;
export type DurableType = (typeof DURABLE_TYPES)[number];

export const MUTATION_TYPES = [
  "contact_created",
  "contact_updated",
  "contact_deleted",
  "note_added",
] as const;
export type MutationType = (typeof MUTATION_TYPES)[number];

/** A durable event: one entry of the workspace's log. */
export interface DurableEvent {
  readonly type: DurableType;
  readonly seq: number;
  readonly event_id?: string;
  readonly workspace_id?: string;
  readonly actor?: { readonly id: string; readonly name?: string | null };
  readonly ts?: string;
  readonly data: Record<string, unknown>;
}

export interface Welcome {
  readonly type: "welcome";
  readonly session_id: string;
  readonly workspace_id: string;
  readonly user: User;
  readonly seq: number;
  readonly epoch?: string;
  readonly presence: User[];
  readonly presence_truncated?: boolean;
  readonly presence_count?: number;
  readonly heartbeat_s?: number;
  readonly replay?: {
    readonly from_seq: number;
    readonly to_seq: number;
    readonly count: number;
    readonly compacted?: boolean;
  };
  readonly resync_required?: boolean;
  readonly oldest_seq?: number;
}

export interface PresenceFrame {
  readonly type: "presence";
  readonly event: "join" | "leave" | "update" | "diff";
  readonly user?: User;
  readonly joins?: User[];
  readonly leaves?: User[];
  readonly updates?: User[];
}

export interface TypingFrame {
  readonly type: "typing";
  readonly user_id: string;
  readonly contact_id: string;
  readonly is_typing: boolean;
}

export interface BroadcastFrame {
  readonly type: "broadcast";
  readonly event: string;
  readonly payload: Record<string, unknown>;
  readonly user_id: string;
}

export interface AckFrame {
  readonly type: "ack";
  readonly ref: string | null;
  readonly seq?: number;
  readonly data?: Record<string, unknown>;
}

export interface ErrorFrame {
  readonly type: "error";
  readonly ref?: string;
  readonly code: string;
  readonly message: string;
  readonly details?: Record<string, unknown>;
  readonly retry_after?: number;
}

/** Any frame the server sends; `type` tells which. */
export interface Frame {
  readonly type: string;
  readonly [key: string]: unknown;
}

/** A mutation waiting for its `ack`, kept (and persisted) until then. */
export interface PendingMutation {
  readonly ref: string;
  readonly type: MutationType;
  readonly data: Readonly<Record<string, unknown>>;
  /** Milliseconds since 1970 when it was made: the queue's order. */
  readonly createdAt: number;
}

/** A stale `base_version` on a field someone else changed: nothing was applied. */
export interface Conflict {
  readonly ref: string;
  readonly contactId: string;
  /** The contact as it is now on the server. */
  readonly current: Contact | null;
  /** The fields that clash. */
  readonly fields: readonly string[];
  /** What this client tried to set, for those fields. */
  readonly yours: Readonly<Record<string, unknown>>;
  /** What they are now on the server. */
  readonly theirs: Readonly<Record<string, unknown>>;
}
