/** `@livespace/client`: the TypeScript SDK for livespace (see README.md). */

export { LivespaceClient } from "./client.js";
export type { WebSocketConstructor, WebSocketLike } from "./connection.js";
export { ConflictError, LivespaceError } from "./errors.js";
export { IndexedDBStorage } from "./idb.js";
export { MemoryStorage, type OutboxStorage } from "./outbox.js";
export type { ClientEvents, ClientOptions, Snapshot } from "./surface.js";
export { DEFAULTS } from "./surface.js";
export type { TokenSource } from "./token.js";
export type {
  AckFrame, BroadcastFrame, Conflict, Contact, DurableEvent, DurableType, ErrorFrame, Frame,
  MutationType, Note, PendingMutation, PresenceFrame, PresenceStatus, Status, TypingFrame, User, Welcome,
} from "./types.js";
