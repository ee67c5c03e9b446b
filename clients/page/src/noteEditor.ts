// A note written by several people at once (docs/collaboration.md): a textarea labelled
// "Shared note" bound to the note's Yjs document (`body`) over y-websocket, and the list
// "Editing" of the others in it, each with where their cursor is. Viewers get it
// read-only. The note's body in the list follows through `note_updated`.

import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { h, setText } from "./dom";

export interface EditorOptions {
  base: string; // the server's http(s) base URL
  workspace: string;
  noteId: string;
  token: string;
  name: string;
  readOnly: boolean;
}

const COLORS = ["#2f6fde", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285"];

/** Mount the editor of one note into `host`; returns a function that closes it. */
export function mountNoteEditor(host: HTMLElement, opts: EditorOptions): () => void {
  const doc = new Y.Doc();
  const text = doc.getText("body");
  const color = COLORS[doc.clientID % COLORS.length];
  const url = opts.base.replace(/^http/, "ws").replace(/\/$/, "") + `/ws/workspace/${opts.workspace}/notes`;
  // the token goes as a subprotocol, never in a URL (where logs and history keep it)
  const provider = new WebsocketProvider(url, opts.noteId, doc, {
    protocols: ["livespace.v1", `bearer.${opts.token}`],
  });
  const area = h("textarea", { class: "shared-note", "aria-label": "Shared note", rows: 6 });
  area.readOnly = opts.readOnly;
  area.disabled = true; // until the document arrives
  const others = h("ul", { class: "editing", "aria-label": "Editing" });
  host.replaceChildren(area, others);
  host.hidden = false;
  provider.awareness.setLocalStateField("user", { name: opts.name, color });

  let shown = "";
  const show = (): void => {
    const value = text.toString();
    if (value === area.value) return;
    // keep our selection where it was in the text, whatever the others changed
    const anchor = Y.createRelativePositionFromTypeIndex(text, Math.min(area.selectionStart, shown.length));
    const head = Y.createRelativePositionFromTypeIndex(text, Math.min(area.selectionEnd, shown.length));
    area.value = shown = value;
    const a = Y.createAbsolutePositionFromRelativePosition(anchor, doc)?.index ?? value.length;
    const b = Y.createAbsolutePositionFromRelativePosition(head, doc)?.index ?? value.length;
    if (document.activeElement === area) area.setSelectionRange(a, b);
  };
  provider.on("sync", (synced: boolean) => {
    if (!synced) return;
    area.disabled = false;
    show();
  });
  text.observe((event) => {
    if (!event.transaction.local) show();
  });

  // a local edit: the one changed range between what was shown and what is there now
  area.addEventListener("input", () => {
    const next = area.value;
    let start = 0;
    while (start < shown.length && start < next.length && shown[start] === next[start]) start++;
    let end = 0;
    while (end < shown.length - start && end < next.length - start
           && shown[shown.length - 1 - end] === next[next.length - 1 - end]) end++;
    doc.transact(() => {
      if (shown.length - start - end > 0) text.delete(start, shown.length - start - end);
      const inserted = next.slice(start, next.length - end);
      if (inserted) text.insert(start, inserted);
    });
    shown = next;
    cursor();
  });
  const cursor = (): void => {
    if (document.activeElement !== area) return;
    provider.awareness.setLocalStateField("cursor", {
      anchor: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, area.selectionStart)),
      head: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, area.selectionEnd)),
    });
  };
  area.addEventListener("select", cursor);
  area.addEventListener("keyup", cursor);
  area.addEventListener("click", cursor);
  area.addEventListener("blur", () => provider.awareness.setLocalStateField("cursor", null));

  const drawOthers = (): void => {
    const items: HTMLElement[] = [];
    for (const [id, state] of provider.awareness.getStates()) {
      if (id === doc.clientID) continue;
      const user = (state as { user?: { name?: string; color?: string } }).user;
      if (!user?.name) continue;
      const at = (state as { cursor?: { head?: unknown } | null }).cursor?.head;
      let where = "";
      if (at) {
        const index = Y.createAbsolutePositionFromRelativePosition(
          Y.createRelativePositionFromJSON(at), doc)?.index;
        if (index !== undefined) where = ` at ${index}`;
      }
      const item = h("li", { class: "editor" });
      item.style.borderColor = user.color ?? "";
      setText(item, `${user.name} is editing${where}`);
      items.push(item);
    }
    others.replaceChildren(...items);
  };
  provider.awareness.on("change", drawOthers);

  return () => {
    provider.destroy();
    doc.destroy();
    host.replaceChildren();
    host.hidden = true;
  };
}
