// The status line (role="status"): "Live" when connected and caught up, "Catching up"
// while reconnecting and replaying, "Offline" with the number of changes waiting.

import type { App } from "./app";
import { byId, plural, setText } from "./dom";

export function mountStatus(app: App): void {
  const el = byId("status");
  let everLive = false;
  const render = (): void => {
    const status = app.snapshot.status;
    const waiting = app.snapshot.pending.length;
    const queued = waiting ? ` · ${plural(waiting, "change", "changes")} waiting` : "";
    let state: string;
    let text: string;
    if (status === "live") {
      everLive = true;
      state = "live";
      text = waiting ? `Live · sending ${plural(waiting, "change", "changes")}` : "Live";
    } else if (status === "offline") {
      state = "offline";
      text = `Offline${queued}`;
    } else if (status === "connecting") {
      state = "connecting";
      text = everLive ? `Catching up${queued}` : "Connecting";
    } else {
      state = "offline";
      text = `Offline · signed out${queued}`;
    }
    el.dataset.state = state;
    setText(el, text);
  };
  app.on("status", render);
  render();
}
