// Signing in: the workspace and token come from the URL fragment (which the browser never
// sends to a server) or from the sign-in form, and are kept in this tab's sessionStorage
// so a reload stays signed in. The fragment is wiped from the address bar at once, so the
// token is not left on screen, in the history or in a copied link.

import { byId } from "./dom";

export interface Credentials {
  workspace: string;
  token: string;
}

const KEY = "livespace.credentials";

export function fromFragment(hash: string): Credentials | null {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const workspace = params.get("workspace")?.trim();
  const token = params.get("token")?.trim();
  return workspace && token ? { workspace, token } : null;
}

export function remembered(): Credentials | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const value = JSON.parse(raw) as Partial<Credentials>;
    return value.workspace && value.token ? { workspace: value.workspace, token: value.token } : null;
  } catch {
    return null;
  }
}

export function remember(credentials: Credentials): void {
  try {
    sessionStorage.setItem(KEY, JSON.stringify(credentials));
  } catch {
    // storage refused (private mode quotas): signed in for this page load only
  }
}

export function forget(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing kept
  }
}

/** Credentials from the fragment (then wiped from the address bar) or from this tab. */
export function current(): Credentials | null {
  const fromLink = fromFragment(location.hash);
  if (fromLink) {
    remember(fromLink);
    history.replaceState(null, "", location.pathname + location.search);
    return fromLink;
  }
  return remembered();
}

/** Show the sign-in form (with `problem` said above it) and resolve with what is entered. */
export function ask(problem: string | null, workspace = ""): Promise<Credentials> {
  const main = byId("signin");
  const form = byId<HTMLFormElement>("signin-form");
  const error = byId("signin-error");
  const ws = byId<HTMLInputElement>("signin-workspace");
  const token = byId<HTMLTextAreaElement>("signin-token");
  main.hidden = false;
  error.hidden = !problem;
  error.textContent = problem ?? "";
  if (workspace) ws.value = workspace;
  (ws.value ? token : ws).focus();
  return new Promise((resolve) => {
    const submit = (event: Event): void => {
      event.preventDefault();
      const entered = { workspace: ws.value.trim(), token: token.value.trim() };
      if (!entered.workspace || !entered.token) return;
      form.removeEventListener("submit", submit);
      token.value = "";
      main.hidden = true;
      remember(entered);
      resolve(entered);
    };
    form.addEventListener("submit", submit);
  });
}
