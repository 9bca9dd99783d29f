// The signed-in agent's presence in the top bar: "Online" while their desk is open, or "Away"
// when they say so (PUT /api/v1/agents/me/presence; no tickets are routed to them while away).
import { state } from "./state.js";
import { api } from "./api.js";
import { h, toast } from "./dom.js";
import { list } from "./format.js";

/** What the desk calls each presence. */
export const PRESENCE_LABEL = Object.freeze({ online: "online", away: "away", offline: "offline" });

let button = null;

function show(presence) {
  if (!button) return;
  const away = presence === "away";
  button.dataset.presence = presence;
  button.textContent = away ? "Away" : "Online";
  button.title = away ? "You are away: no tickets are routed to you. Click to be online."
    : "You are online: escalations may be routed to you. Click to be away.";
  button.setAttribute("aria-pressed", away ? "true" : "false");
}

/** The top bar's presence button, showing what the server says about the signed-in agent. */
export function presenceToggle() {
  button = h("button", { type: "button", class: "presence link", "data-action": "presence" }, "Online");
  button.addEventListener("click", async () => {
    const next = button.dataset.presence === "away" ? "online" : "away";
    const res = await api("PUT", "/api/v1/agents/me/presence", { status: next });
    if (!res.ok) { toast(res.data.error || "Could not change your presence", "error"); return; }
    show(next);
  });
  return button;
}

/**
 * Read the signed-in agent's presence from the directory. Called on each stream.ready: before it
 * (a reload, whose old stream has closed and new one not yet opened) the server counts the agent
 * offline, which would show "Online" over a stated "Away"; after it, changes arrive as events.
 */
export async function refreshPresence() {
  const res = await api("GET", "/api/v1/agents");
  if (!res.ok || !state.me) return;
  const mine = list(res.data, "agents").find((a) => a.id === state.me.id);
  if (mine) show(mine.presence === "away" ? "away" : "online");
}

/** A live `agent.presence` event about the signed-in agent (another tab of theirs changed it). */
export function onOwnPresence(e) {
  if (state.me && e.agent_id === state.me.id && e.presence !== "offline") show(e.presence);
}
