// The contact list (labelled "Contacts": one item per contact, with who is viewing it),
// its search, and the form labelled "New contact".

import { type App, displayName } from "./app";
import { avatar, byId, h, setText, syncList } from "./dom";
import { describe, notify } from "./notice";
import type { Shown } from "./pending";

export function mountContacts(app: App): void {
  const list = byId<HTMLUListElement>("contacts");
  const search = byId<HTMLInputElement>("search");
  const count = byId("contact-count");
  const empty = byId("contacts-empty");

  const render = (): void => {
    const all = app.shownContacts();
    const query = search.value.trim().toLowerCase();
    const shown = query ? all.filter((c) => matches(c, query)) : all;
    syncList(list, shown, (c) => c.id, (c) => item(app, c), (el, c) => update(app, el, c));
    setText(count, query ? `${shown.length} of ${all.length}` : String(all.length));
    empty.hidden = shown.length > 0;
    setText(empty, query ? `No contact matches “${search.value.trim()}”.`
                         : "No contacts yet: add the first one below.");
  };
  app.on("contacts", render);
  app.on("presence", render);
  app.on("selection", render);
  search.addEventListener("input", render);
  list.addEventListener("keydown", (event) => moveFocus(list, event));
  render();

  const form = byId<HTMLFormElement>("new-contact");
  const name = byId<HTMLInputElement>("new-contact-name");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = name.value.trim();
    if (!value) return;
    name.value = "";
    const asked = Date.now();
    const live = app.snapshot.status === "live";
    app.createContact(value).then(
      (contact) => {
        // open it to fill in, unless it was made offline or the answer came late
        if (live && !app.selected && Date.now() - asked < 3000) app.select(contact.id);
      },
      (error: unknown) => notify(`Could not add ${value}: ${describe(error)}`),
    );
  });
}

function matches(c: Shown, query: string): boolean {
  return [c.name, c.email, c.company, c.phone].some((v) => v.toLowerCase().includes(query));
}

function item(app: App, c: Shown): HTMLLIElement {
  const button = h("button", { type: "button", class: "contact" },
    h("span", { class: "contact-face" }),
    h("span", { class: "contact-main" },
      h("span", { class: "contact-name" }), h("span", { class: "contact-sub" })),
    h("span", { class: "viewers" }),
    h("span", { class: "badge pending", hidden: true }, "pending"));
  button.addEventListener("click", () => {
    const id = button.closest("li")?.dataset.key;
    if (id && app.contact(id)) app.select(id);
  });
  return h("li", { class: "contact-item" }, button);
}

function update(app: App, el: HTMLElement, c: Shown): void {
  const button = el.querySelector<HTMLButtonElement>("button.contact")!;
  const openable = c.contact !== null;
  button.disabled = !openable;
  button.title = openable ? "" : "Waiting for the server";
  button.setAttribute("aria-current", String(app.selected === c.id));
  el.classList.toggle("pending", c.pending);
  setText(button.querySelector<HTMLElement>(".contact-name")!, c.name);
  setText(button.querySelector<HTMLElement>(".contact-sub")!, c.company || c.email);
  const face = button.querySelector<HTMLElement>(".contact-face")!;
  if (face.dataset.name !== c.name) {
    face.dataset.name = c.name;
    face.replaceChildren(avatar(c.id, c.name, "small neutral"));
  }
  button.querySelector<HTMLElement>(".badge.pending")!.hidden = !c.pending;
  const viewers = app.viewers(c.id);
  const box = button.querySelector<HTMLElement>(".viewers")!;
  const signature = viewers.map((u) => `${u.id}:${displayName(u)}`).join(",");
  if (box.dataset.signature !== signature) {
    box.dataset.signature = signature;
    box.replaceChildren(...viewers.map((u) => {
      const label = `${displayName(u)} is viewing`;
      const chip = h("span", { class: "viewer", role: "img", "aria-label": label, title: label },
        avatar(u.id, displayName(u), "tiny"), h("span", { class: "visually-hidden" }, label));
      return chip;
    }));
  }
}

/** Up and down arrows move between contacts, Home and End to the first and last. */
function moveFocus(list: HTMLElement, event: KeyboardEvent): void {
  const buttons = [...list.querySelectorAll<HTMLButtonElement>("button.contact:not(:disabled)")];
  const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
  if (at < 0) return;
  const next = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: buttons.length - 1 }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  buttons[Math.max(0, Math.min(buttons.length - 1, next))]?.focus();
}
