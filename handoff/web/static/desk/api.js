// The desk's calls to the REST API (/api/v1) and the desk routes (/desk/…), with the
// same-origin session cookie. Errors come back as data, never thrown for an HTTP status.
import { state } from "./state.js";
import { toast } from "./dom.js";
import { list } from "./format.js";

let unauthorized = () => {};

/** Call `fn()` when an API call answers 401 (the session ended); main.js shows the sign-in form. */
export function onUnauthorized(fn) { unauthorized = fn; }

/**
 * api("POST", "/api/v1/tickets/3/claim", body?) → {ok, status, data}: `body` is sent as JSON,
 * `data` is the JSON answer ({} when there is none; errors are {error: "…"}).
 */
export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (res.status === 401 && !path.startsWith("/desk/")) { state.me = null; unauthorized(); }
  return { ok: res.ok, status: res.status, data: data || {} };
}

/**
 * Upload one File as multipart field "file" to /api/v1/uploads → the upload ({id, filename,
 * content_type, size}), or null after a toast naming the file and the server's error.
 */
export async function uploadFile(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const res = await fetch("/api/v1/uploads", { method: "POST", credentials: "same-origin", body: form });
  let data = {};
  try { data = await res.json(); } catch { data = {}; }
  if (!res.ok) { toast(file.name + ": " + (data.error || "upload failed"), "error"); return null; }
  return data;
}

/** The agent directory (GET /api/v1/agents), loaded once per page load. */
export async function loadAgents() {
  if (state.agents) return state.agents;
  const res = await api("GET", "/api/v1/agents");
  state.agents = list(res.data, "agents");
  return state.agents;
}
