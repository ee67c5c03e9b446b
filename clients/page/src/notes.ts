// The open contact's notes (list "Notes", field "Add a note", button "Add note"): loaded
// through the client when the contact opens, then kept current by note events. A note
// added offline shows at once, marked pending.

import { type App, displayName } from "./app";
import { h, setText, syncList, when } from "./dom";
import type { Note } from "./live";
import { describe, notify } from "./notice";
import { mountNoteEditor } from "./noteEditor";
import { pendingNotes } from "./pending";

/** Draw the notes of `contactId` into `section`; returns a function that stops it. */
export function mountNotes(app: App, section: HTMLElement, contactId: string): () => void {
  const list = h("ul", { class: "notes", "aria-label": "Notes" });
  const status = h("p", { class: "empty notes-empty" });
  const field = h("textarea", { id: "note-body", name: "body", rows: 3, maxlength: 10000,
                                placeholder: "What happened? Ctrl+Enter adds it." });
  const form = h("form", { class: "new-note", "aria-label": "New note" },
    h("label", { for: "note-body" }, "Add a note"), field,
    h("div", { class: "row end" }, h("button", { type: "submit", class: "primary" }, "Add note")));
  // The collaborative note editor (noteEditor.ts): one shared document per note.
  const editor = h("div", { id: "note-editor", class: "note-editor", hidden: true });
  section.replaceChildren(h("h3", { id: "notes-title" }, "Notes"), editor, list, status, form);
  let closeEditor: (() => void) | null = null;
  let editing: string | null = null;
  const edit = (noteId: string): void => {
    closeEditor?.();
    closeEditor = null;
    if (editing === noteId) {
      editing = null;
    } else {
      editing = noteId;
      closeEditor = mountNoteEditor(editor, {
        base: app.base, workspace: app.workspace, noteId, token: app.token,
        name: app.me ? displayName(app.me) : "someone", readOnly: app.readOnly,
      });
    }
    render();
  };

  const render = (): void => {
    if (!list.isConnected) return;
    const { notes, loaded } = app.notesOf(contactId);
    const waiting = pendingNotes(app.snapshot.pending, contactId).map(
      (p): Note & { pending?: true } => ({
        id: p.ref, contact_id: contactId, body: p.body, pending: true,
        author: { id: app.me?.id ?? "", name: app.me ? displayName(app.me) : "" },
        created_at: new Date(p.createdAt).toISOString(),
      }));
    const all: (Note & { pending?: true })[] = [...notes, ...waiting];
    syncList(list, all, (n) => n.id, () => h("li", { class: "note" },
      h("p", { class: "note-body" }), h("p", { class: "note-meta" }),
      h("button", { type: "button", class: "link edit-together" })), (el, n) => {
      el.classList.toggle("pending", Boolean(n.pending));
      const button = el.querySelector<HTMLButtonElement>(".edit-together")!;
      button.hidden = Boolean(n.pending);
      button.onclick = () => edit(n.id);
      setText(button, editing === n.id ? "Done" : "Edit together");
      setText(el.querySelector<HTMLElement>(".note-body")!, n.body);
      const by = n.author?.name || n.author?.id || "someone";
      setText(el.querySelector<HTMLElement>(".note-meta")!,
              n.pending ? `${by} · pending` : `${by} · ${when(n.created_at)}`);
    });
    status.hidden = all.length > 0;
    setText(status, loaded ? "No notes yet."
      : failed ? "The notes could not be loaded: trying again when back online."
      : "Loading notes…");
  };

  // Loaded once; a load that failed (offline, a cut) is tried again when back live.
  let failed = false;
  const load = (): void => {
    app.loadNotes(contactId).catch((error: unknown) => {
      failed = true;
      render();
      if (app.snapshot.status === "live") notify(`Could not load the notes: ${describe(error)}`);
    });
  };
  const stopRetry = app.on("status", () => {
    if (failed && app.snapshot.status === "live") {
      failed = false;
      load();
    }
  });
  load();

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = field.value.trim();
    if (!body) return;
    field.value = "";
    app.stopTyping();
    app.addNote(contactId, body).catch((error: unknown) => {
      field.value ||= body;
      notify(`Could not add the note: ${describe(error)}`);
    });
  });
  field.addEventListener("input", () => app.typingOnOpenContact());
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  const stopRender = app.on("notes", render);
  render();
  return () => {
    closeEditor?.();
    stopRender();
    stopRetry();
  };
}
