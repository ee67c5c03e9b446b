// The open contact: fields "Name", "Email", "Phone", "Company", "Save", delete, who is
// typing on it, and a conflict (both values, keep mine or take theirs) when someone else
// changed a field I was editing. Notes are mounted below by notes.ts.
//
// Editing: a field I change is "dirty" and keeps my value while the others follow live
// updates. Each dirty field remembers the contact version it was based on, and Save sends
// only the dirty fields with the oldest of those as `base_version`, so the server merges
// edits of different fields and refuses only a field changed by someone else meanwhile.

import { type App, displayName } from "./app";
import { byId, h, setText, when } from "./dom";
import { type Conflict, ConflictError, type Contact, text } from "./live";
import { describe, notify } from "./notice";
import { mountNotes } from "./notes";

const FIELDS = [
  { key: "name", label: "Name", type: "text", max: 200, autocomplete: "off" },
  { key: "email", label: "Email", type: "email", max: 254, autocomplete: "off" },
  { key: "phone", label: "Phone", type: "tel", max: 50, autocomplete: "off" },
  { key: "company", label: "Company", type: "text", max: 200, autocomplete: "off" },
] as const;
type Field = (typeof FIELDS)[number]["key"];

interface Editing {
  id: string;
  version: number; // of the values the clean fields show
  base: Partial<Record<Field, number>>; // dirty field -> version it was based on
  inputs: Record<Field, HTMLInputElement>;
  deleting: boolean;
  stopNotes: () => void;
}

export function mountDetail(app: App): void {
  const section = byId("detail");
  const title = byId("detail-title");
  const empty = byId("detail-empty");
  const body = byId("detail-body");
  const back = byId<HTMLButtonElement>("detail-back");
  let editing: Editing | null = null;
  /** Unsaved edits of contacts left open, by contact id: back when the contact is opened
   * again (for this page's life), so switching contacts loses nothing typed. */
  const drafts = new Map<string, { values: Partial<Record<Field, string>>;
                                   base: Partial<Record<Field, number>> }>();
  /** conflict ref -> every change of the refused update (the conflict holds only the
   * clashing fields; the others were refused with them and are sent again on resolve) */
  const refused = new Map<string, Record<string, string | null>>();

  /** Close the open contact and put the focus back on its item in the list. */
  const close = (): void => {
    const id = app.selected;
    app.select(null);
    const item = [...document.querySelectorAll<HTMLElement>("#contacts > li")]
      .find((li) => li.dataset.key === id);
    item?.querySelector<HTMLButtonElement>("button")?.focus();
  };
  back.addEventListener("click", close);
  document.addEventListener("keydown", (event) => {
    // Escape closes, but never throws away what is being typed
    if (event.key === "Escape" && editing && Object.keys(editing.base).length === 0
        && !(event.target instanceof HTMLSelectElement)) {
      close();
    }
  });

  const open = (): void => {
    const id = app.selected;
    const contact = id ? app.contact(id) : null;
    document.body.classList.toggle("has-selection", Boolean(contact));
    if (editing) {
      editing.stopNotes();
      const dirtyFields = Object.keys(editing.base) as Field[];
      if (dirtyFields.length > 0) {
        const values: Partial<Record<Field, string>> = {};
        for (const f of dirtyFields) values[f] = editing.inputs[f].value;
        drafts.set(editing.id, { values, base: { ...editing.base } });
      } else drafts.delete(editing.id);
    }
    if (!id || !contact) {
      editing = null;
      body.hidden = true;
      body.replaceChildren();
      empty.hidden = false;
      setText(title, "No contact open");
      return;
    }
    editing = build(app, contact);
    const draft = drafts.get(id);
    if (draft) {
      for (const [f, value] of Object.entries(draft.values) as [Field, string][]) {
        editing.inputs[f].value = value;
      }
      editing.base = { ...draft.base };
      drafts.delete(id);
      renderActions();
    }
    empty.hidden = true;
    body.hidden = false;
    section.scrollTop = 0;
  };

  const build = (app: App, contact: Contact): Editing => {
    const inputs = {} as Record<Field, HTMLInputElement>;
    const rows = FIELDS.map((f) => {
      const input = h("input", { id: `field-${f.key}`, name: f.key, type: f.type,
                                 maxlength: f.max, autocomplete: f.autocomplete,
                                 required: f.key === "name" });
      input.value = text(contact, f.key);
      inputs[f.key] = input;
      input.addEventListener("input", () => {
        dirty(f.key);
        app.typingOnOpenContact();
      });
      return h("div", { class: "field" }, h("label", { for: input.id }, f.label), input);
    });
    const state: Editing = { id: contact.id, version: contact.version, base: {}, inputs,
                             deleting: false, stopNotes: () => {} };
    const form = h("form", { class: "contact-form", "aria-labelledby": "detail-title" },
      h("p", { class: "meta", id: "detail-meta" }),
      h("div", { class: "typing", id: "typing", "aria-live": "polite" }),
      h("div", { class: "fields" }, ...rows),
      h("div", { id: "conflict" }),
      h("div", { class: "actions", id: "detail-actions" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      save();
    });
    const notes = h("section", { class: "notes-section", "aria-labelledby": "notes-title" });
    body.replaceChildren(form, notes);
    state.stopNotes = mountNotes(app, notes, contact.id);
    editing = state;
    refresh();
    return state;
  };

  const dirty = (field: Field): void => {
    if (!editing) return;
    const contact = app.contact(editing.id);
    const same = contact !== null && editing.inputs[field].value.trim() === text(contact, field);
    if (same) delete editing.base[field];
    else if (editing.base[field] === undefined) editing.base[field] = editing.version;
    renderActions();
  };

  const save = (): void => {
    if (!editing) return;
    const e = editing;
    const fields = Object.keys(e.base) as Field[];
    if (fields.length === 0) return;
    const changes: Record<string, string | null> = {};
    for (const f of fields) {
      const value = e.inputs[f].value.trim();
      if (f === "name" && !value) {
        e.inputs.name.focus();
        notify("A contact needs a name.");
        return;
      }
      changes[f] = value || null;
    }
    const base = Math.min(...fields.map((f) => e.base[f]!));
    e.base = {};
    app.stopTyping();
    send(e.id, changes, base);
    renderActions();
  };

  /** Send an update; a conflict comes back through the client's snapshot (drawn by
   * renderConflict), any other refusal is said at once. */
  const send = (id: string, changes: Record<string, string | null>, base: number): void => {
    app.updateContact(id, changes, base).then(
      () => renderActions(),
      (error: unknown) => {
        if (error instanceof ConflictError) {
          refused.set(error.conflict.ref, changes);
          if (editing?.id !== id) {
            notify(`Your change to ${text(error.conflict.current, "name") || "a contact"} ` +
                   "clashed with someone else's: open it to choose.");
          }
          renderConflict();
          return;
        }
        notify(`Could not save: ${describe(error)}`);
      },
    );
  };

  /** The open contact changed (live event, ack, pending change): follow it. */
  const refresh = (): void => {
    if (!editing) return;
    const contact = app.contact(editing.id);
    if (!contact) {
      const mine = app.snapshot.pending.some((m) => m.type === "contact_deleted"
                                             && m.data["id"] === editing?.id);
      app.select(null);
      if (!mine) notify("That contact was deleted.");
      return;
    }
    if (contact.version !== editing.version) {
      for (const f of FIELDS) {
        if (editing.base[f.key] === undefined) editing.inputs[f.key].value = text(contact, f.key);
      }
      editing.version = contact.version;
    }
    for (const input of Object.values(editing.inputs)) input.readOnly = app.readOnly;
    setText(title, text(contact, "name") || "Unnamed contact");
    const updated = typeof contact.updated_at === "string" ? when(contact.updated_at) : "";
    setText(byId("detail-meta"), (updated ? `Updated ${updated}` : "")
      + (app.readOnly ? " · you can view this workspace, not change it" : ""));
    renderConflict();
    renderActions();
    renderTyping();
  };

  const renderTyping = (): void => {
    const box = document.getElementById("typing");
    if (!box || !editing) return;
    const names = app.typists(editing.id).map(displayName);
    const signature = names.join("|");
    if (box.dataset.signature === signature) return;
    box.dataset.signature = signature;
    box.replaceChildren(...names.map((n) => h("span", { class: "typist" }, `${n} is typing`)));
  };

  /** Save, its state, and delete (with its confirmation): made once per open contact and
   * updated in place, so the focus stays on a button while updates arrive. */
  const renderActions = (): void => {
    const box = document.getElementById("detail-actions");
    if (!box || !editing) return;
    const e = editing;
    if (!box.firstChild) {
      const confirm = h("span", { class: "confirm-delete", hidden: true },
        h("span", { class: "confirm" }),
        h("button", { type: "button", class: "danger", onclick: () => {
          e.deleting = false;
          app.deleteContact(e.id).catch((err: unknown) => notify(`Could not delete: ${describe(err)}`));
        } }, "Delete"),
        h("button", { type: "button", onclick: () => {
          e.deleting = false;
          renderActions();
          box.querySelector<HTMLButtonElement>("button.ask-delete")?.focus();
        } }, "Cancel"));
      box.append(
        h("button", { type: "submit", class: "primary save" }, "Save"),
        h("span", { class: "save-state" }),
        h("button", { type: "button", class: "danger subtle ask-delete", onclick: () => {
          e.deleting = true;
          renderActions();
          confirm.querySelector<HTMLButtonElement>("button")?.focus();
        } }, "Delete contact"),
        confirm);
    }
    const save = box.querySelector<HTMLButtonElement>("button.save")!;
    const state = box.querySelector<HTMLElement>(".save-state")!;
    const ask = box.querySelector<HTMLButtonElement>("button.ask-delete")!;
    const confirm = box.querySelector<HTMLElement>(".confirm-delete")!;
    const waiting = app.snapshot.pending.some(
      (m) => m.type === "contact_updated" && m.data["id"] === e.id);
    const unsaved = Object.keys(e.base).length > 0;
    let note = "";
    if (unsaved) note = "Unsaved changes";
    else if (waiting) {
      note = app.snapshot.status === "live" ? "Saving…" : "Saved here · waiting to sync";
    }
    save.disabled = !unsaved;
    save.hidden = ask.hidden = state.hidden = e.deleting;
    setText(state, note);
    state.classList.toggle("pending", waiting && !unsaved);
    confirm.hidden = !e.deleting;
    setText(confirm.querySelector<HTMLElement>(".confirm")!,
            `Delete ${text(app.contact(e.id), "name")} for everyone?`);
  };

  const renderConflict = (): void => {
    const box = document.getElementById("conflict");
    if (!box || !editing) return;
    const e = editing;
    const conflict = app.conflict(e.id);
    const who = app.lastEditor(e.id) ?? "Someone else";
    const signature = conflict ? `${conflict.ref}|${who}` : "";
    if (box.dataset.signature === signature) return; // unchanged: keep the focus where it is
    box.dataset.signature = signature;
    if (!conflict) {
      box.replaceChildren();
      return;
    }
    const current = conflict.current ?? app.contact(e.id);
    const rows = conflict.fields.map((f) => {
      const label = FIELDS.find((x) => x.key === f)?.label ?? f;
      return h("tr", {}, h("th", { scope: "row" }, label),
        h("td", {}, h("span", { class: "which" }, "Yours"), show(conflict.yours[f])),
        h("td", {}, h("span", { class: "which" }, "Theirs"), show(conflict.theirs[f])));
    });
    box.replaceChildren(h("div", { class: "conflict", role: "group",
                                   "aria-labelledby": "conflict-title" },
      h("h3", { id: "conflict-title" }, `${who} changed this while you were editing`),
      h("table", {}, h("tbody", {}, ...rows)),
      h("div", { class: "conflict-actions" },
        h("button", { type: "button", class: "primary",
                      onclick: () => resolve(conflict, current, true) }, "Keep mine"),
        h("button", { type: "button", onclick: () => resolve(conflict, current, false) },
          "Take theirs"))));
  };

  /** Keep mine: send my whole refused update again on top of the current version. Take
   * theirs: keep their values for the clashing fields, and send again only the rest of
   * my update (refused with them). */
  const resolve = (conflict: Conflict, current: Contact | null, keepMine: boolean): void => {
    const all = { ...(refused.get(conflict.ref) ?? {}),
                  ...(conflict.yours as Record<string, string | null>) };
    refused.delete(conflict.ref);
    app.live.dismissConflict(conflict.ref);
    const changes: Record<string, string | null> = {};
    for (const [field, value] of Object.entries(all)) {
      if (keepMine || !conflict.fields.includes(field)) changes[field] = value ?? null;
    }
    const version = current?.version ?? app.contact(conflict.contactId)?.version;
    if (Object.keys(changes).length > 0 && version !== undefined) {
      send(conflict.contactId, changes, version);
    }
    if (editing?.id === conflict.contactId) {
      const latest = app.contact(conflict.contactId);
      for (const f of conflict.fields) {
        if (f in editing.inputs) {
          delete editing.base[f as Field];
          editing.inputs[f as Field].value = keepMine ? String(all[f] ?? "") : text(latest, f);
        }
      }
      refresh();
    }
  };

  app.on("selection", open);
  app.on("contacts", refresh);
  app.on("status", renderActions);
  app.on("presence", refresh); // my role may change (role_changed)
  app.on("typing", renderTyping);
  app.on("conflicts", renderConflict);
  app.on("presence", renderTyping);
  open();
}

function show(value: unknown): HTMLElement {
  const t = typeof value === "string" ? value : "";
  return t ? h("span", { class: "value" }, t) : h("span", { class: "value none" }, "(empty)");
}
