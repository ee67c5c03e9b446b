/** Typed handlers by event name; a throwing handler is reported and never stops the others. */

export type Handler<T> = (value: T) => void;

export class Emitter<Events extends object> {
  private readonly handlers = new Map<keyof Events, Set<Handler<never>>>();

  constructor(private readonly report: (error: unknown) => void = (e) => console.error(e)) {}

  on<K extends keyof Events>(type: K, handler: Handler<Events[K]>): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler as Handler<never>);
    return () => {
      set.delete(handler as Handler<never>);
    };
  }

  has(type: keyof Events): boolean {
    return (this.handlers.get(type)?.size ?? 0) > 0;
  }

  emit<K extends keyof Events>(type: K, value: Events[K]): void {
    const set = this.handlers.get(type);
    if (!set) return;
    for (const handler of set) {
      try {
        (handler as Handler<Events[K]>)(value);
      } catch (error) {
        this.report(error);
      }
    }
  }

  clear(): void {
    this.handlers.clear();
  }
}
