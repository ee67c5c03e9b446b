// Problems worth telling the person about (a change the server refused, a lost
// sign-in), in one role="alert" region that clears itself.

import { h } from "./dom";

let region: HTMLElement | null = null;

export function notify(message: string, ms = 8000): void {
  if (!region) {
    region = h("div", { class: "notices", role: "alert" });
    document.body.append(region);
  }
  const item = h("p", { class: "notice" }, message,
                 h("button", { type: "button", class: "link", "aria-label": "Dismiss",
                               onclick: () => item.remove() }, "×"));
  region.append(item);
  window.setTimeout(() => item.remove(), ms);
}

/** What a refused change says to a person. */
export function describe(error: unknown): string {
  if (error && typeof error === "object" && "message" in error) {
    return String((error as { message: unknown }).message);
  }
  return String(error);
}
