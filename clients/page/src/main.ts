// The live page: sign in, then the contact list, the open contact with its notes, who is
// online, and the connection's status, all kept current by @livespace/client.

import "./style.css";
import { App } from "./app";
import { mountContacts } from "./contacts";
import { mountDetail } from "./detail";
import { byId } from "./dom";
import { LivespaceClient, LivespaceError, loadWorkspaceName } from "./live";
import { mountPresence } from "./presence";
import { type Credentials, ask, current, forget, fromFragment } from "./signin";
import { mountStatus } from "./status";

const REASONS: Record<string, string> = {
  unauthorized: "That token was refused: it has expired, or this server did not sign it. " +
    "Paste a new one.",
  forbidden: "You are not a member of that workspace (or it does not exist).",
  not_found: "No such workspace.",
};

function reason(error: unknown): string {
  if (error instanceof LivespaceError) return REASONS[error.code] ?? error.message;
  return error instanceof Error ? error.message : String(error);
}

async function signIn(problem: string | null, workspace = ""): Promise<never> {
  byId("app").hidden = true;
  byId("me").hidden = true;
  const status = byId("status");
  status.dataset.state = "offline";
  status.textContent = "Offline · signed out";
  forget();
  await ask(problem, workspace);
  location.reload();
  return new Promise<never>(() => {});
}

function start(credentials: Credentials): void {
  const base = location.origin;
  const client = new LivespaceClient({ url: base, workspace: credentials.workspace,
                                       token: credentials.token });
  const app = new App(client, base, credentials.workspace, credentials.token);
  const signOut = (): void => {
    client.close();
    forget();
    location.replace("/");
  };
  mountStatus(app);
  mountContacts(app);
  mountDetail(app);
  mountPresence(app, signOut);
  byId("app").hidden = false;

  let stopped = false;
  const stop = (error: unknown): void => {
    if (stopped) return;
    stopped = true;
    client.close();
    void signIn(reason(error), credentials.workspace);
  };
  client.subscribe(() => {
    const snap = client.getSnapshot();
    if (snap.status === "closed" && snap.error) stop(snap.error);
    document.body.classList.toggle("read-only", app.readOnly);
  });
  client.connect().catch(stop);
  loadWorkspaceName(base, credentials.workspace, credentials.token).then(
    (name) => {
      if (name) {
        byId("workspace-name").textContent = name;
        document.title = `${name} · livespace`;
      }
    },
    () => {}, // the name is a nicety; the status line says when the server is unreachable
  );
}

// A sign-in link opened in a tab that is already signed in: sign in with it instead.
window.addEventListener("hashchange", () => {
  if (fromFragment(location.hash)) location.reload();
});

const credentials = current();
if (credentials) start(credentials);
else void signIn(null);
