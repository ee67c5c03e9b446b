/**
 * The browser's outbox storage: pending mutations in IndexedDB (database `livespace`,
 * object store `outbox`, key `[scope, ref]`, indexed by `scope`), so an edit made offline survives a reload
 * and is sent once the page is back online. Transactions on one store complete in the
 * order they were opened, so the order of `put` calls is kept.
 */

import type { OutboxStorage } from "./outbox.js";
import type { PendingMutation } from "./types.js";

const DB_NAME = "livespace";
const STORE = "outbox";

interface Row extends PendingMutation {
  readonly scope: string;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

export class IndexedDBStorage implements OutboxStorage {
  private db: Promise<IDBDatabase> | undefined;

  constructor(
    private readonly factory: IDBFactory = globalThis.indexedDB,
    private readonly name = DB_NAME,
  ) {}

  /** Whether this runtime has IndexedDB. */
  static available(): boolean {
    return typeof globalThis.indexedDB !== "undefined";
  }

  private open(): Promise<IDBDatabase> {
    if (!this.db) {
      const req = this.factory.open(this.name, 1);
      req.onupgradeneeded = () => {
        req.result.createObjectStore(STORE, { keyPath: ["scope", "ref"] }).createIndex("scope", "scope");
      };
      this.db = request(req);
      this.db.catch(() => (this.db = undefined));
    }
    return this.db;
  }

  private async store(mode: IDBTransactionMode): Promise<IDBObjectStore> {
    const db = await this.open();
    return db.transaction(STORE, mode).objectStore(STORE);
  }

  async load(scope: string): Promise<PendingMutation[]> {
    const store = await this.store("readonly");
    const rows = (await request(store.index("scope").getAll(scope))) as Row[];
    return rows.map(({ scope: _scope, ...item }) => item).sort((a, b) => a.createdAt - b.createdAt);
  }

  async put(scope: string, item: PendingMutation): Promise<void> {
    const store = await this.store("readwrite");
    await request(store.put({ ...item, scope } satisfies Row));
  }

  async delete(scope: string, ref: string): Promise<void> {
    const store = await this.store("readwrite");
    await request(store.delete([scope, ref]));
  }
}
