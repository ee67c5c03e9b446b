/** The browser's signals the client follows: network online/offline, page visibility. */

export interface BrowserSignals {
  online(): void;
  offline(): void;
  /** The page became visible (a laptop lid opened, a tab came back). */
  visible(): void;
}

/** Listen to `online`, `offline` and `visibilitychange`; the function removes the listeners.
 *  Undefined outside browsers (no `window`/`document`). */
export function watchBrowser(signals: BrowserSignals): (() => void) | undefined {
  const win = globalThis as unknown as {
    addEventListener?: (type: string, listener: () => void) => void;
    removeEventListener?: (type: string, listener: () => void) => void;
    document?: Document;
  };
  const doc = win.document;
  if (typeof win.addEventListener !== "function" || !doc) return undefined;
  const online = () => signals.online();
  const offline = () => signals.offline();
  const visible = () => {
    if (doc.visibilityState === "visible") signals.visible();
  };
  win.addEventListener("online", online);
  win.addEventListener("offline", offline);
  doc.addEventListener("visibilitychange", visible);
  return () => {
    win.removeEventListener?.("online", online);
    win.removeEventListener?.("offline", offline);
    doc.removeEventListener("visibilitychange", visible);
  };
}

/** The runtime's network state at start (true where it cannot tell). */
export function initiallyOnline(): boolean {
  return typeof navigator !== "undefined" && typeof navigator.onLine === "boolean" ? navigator.onLine : true;
}
