// The two ways an agent picks up work from a list or a ticket page: take over a conversation
// from the AI, or assign an open ticket to themselves. Both open the ticket on success and
// name the winner on a 409 (another agent was first).
import { api } from "./api.js";
import { h, toast } from "./dom.js";
import { nameOf } from "./format.js";
import { scheduleReload } from "./reload.js";

/** POST /api/v1/conversations/{id}/takeover; `button` is disabled meanwhile. */
export async function takeover(conversationId, button) {
  if (button) button.disabled = true;
  const res = await api("POST", "/api/v1/conversations/" + conversationId + "/takeover");
  if (res.status === 201 || res.ok) { location.hash = "#ticket/" + res.data.id; return; }
  if (button) button.disabled = false;
  if (res.status === 409) {
    const who = nameOf(res.data.assignee) || "another agent";
    const link = res.data.ticket_id ? h("a", { href: "#ticket/" + res.data.ticket_id, class: "toast-link" }, "View ticket") : null;
    toast("Already taken over by " + who, "warn conflict", link);
    scheduleReload();
    return;
  }
  toast(res.data.error || "Take over failed", "error");
}

/** POST /api/v1/tickets/{id}/claim; `button` is disabled meanwhile. */
export async function claim(ticketId, button) {
  if (button) button.disabled = true;
  const res = await api("POST", "/api/v1/tickets/" + ticketId + "/claim");
  if (res.ok) { location.hash = "#ticket/" + ticketId; return; }
  if (button) button.disabled = false;
  if (res.status === 409) toast("Already assigned to " + (nameOf(res.data.assignee) || "another agent"), "warn conflict");
  else toast(res.data.error || "Could not assign", "error");
  scheduleReload();
}
