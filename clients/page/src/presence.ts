// Who is online (the list labelled "Online": avatars with initials and status, who is in
// the call, what each is looking at), and my own status and call controls in the header.

import { type App, displayName } from "./app";
import { avatar, byId, h, setText, syncList } from "./dom";
import type { User } from "./live";

const STATUS_TEXT: Record<string, string> = {
  online: "online",
  away: "away",
  busy: "busy",
  in_call: "in a call",
};

export function mountPresence(app: App, onSignOut: () => void): void {
  const list = byId<HTMLUListElement>("online");
  const render = (): void => {
    const meId = app.me?.id;
    syncList(list, app.online(), (u) => u.id, (u) => person(u), (el, u) => {
      const status = u.status ?? "online";
      el.dataset.status = status;
      el.classList.toggle("is-me", u.id === meId);
      setText(el.querySelector<HTMLElement>(".name")!, displayName(u));
      const viewing = u.viewing ? app.contact(u.viewing) : null;
      const parts = [STATUS_TEXT[status] ?? status];
      if (u.id === meId) parts.push("you");
      if (viewing && u.id !== meId) parts.push(`on ${viewing.name}`);
      setText(el.querySelector<HTMLElement>(".what")!, parts.join(" · "));
    });
  };
  app.on("presence", render);
  app.on("contacts", render);
  render();
  mountMe(app, onSignOut);
}

function person(u: User): HTMLLIElement {
  return h("li", { class: "person" },
    h("span", { class: "face" }, avatar(u.id, displayName(u)),
      h("span", { class: "dot", "aria-hidden": "true" })),
    h("span", { class: "who" }, h("span", { class: "name" }), h("span", { class: "what" })));
}

function mountMe(app: App, onSignOut: () => void): void {
  const box = byId("me");
  const status = h("select", { id: "my-status", "aria-label": "My status" },
    h("option", { value: "online" }, "Online"),
    h("option", { value: "away" }, "Away"),
    h("option", { value: "busy" }, "Busy"));
  status.addEventListener("change", () => app.setStatus(status.value as "online" | "away" | "busy"));
  const call = h("button", { type: "button", class: "call", "aria-pressed": "false",
                             onclick: () => app.toggleCall() }, "Join call");
  const out = h("button", { type: "button", class: "link", onclick: onSignOut }, "Sign out");
  const face = h("span", { class: "face" });
  const name = h("span", { class: "me-name" });
  box.replaceChildren(face, name, status, call, out);
  let shownFor = "";
  const render = (): void => {
    const me = app.me;
    if (!me) return;
    const label = displayName(me);
    if (shownFor !== `${me.id}|${label}`) {
      shownFor = `${me.id}|${label}`;
      face.replaceChildren(avatar(me.id, label));
      face.title = `Signed in as ${label}`;
      setText(name, label);
      box.hidden = false;
    }
    call.setAttribute("aria-pressed", String(app.inCall));
    setText(call, app.inCall ? "Leave call" : "Join call");
    status.disabled = app.inCall;
  };
  app.on("presence", render);
  render();
}
