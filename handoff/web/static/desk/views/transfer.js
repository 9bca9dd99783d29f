// The Transfer dialog: pick a colleague (each with their presence), add an internal note, POST
// the transfer. A colleague who is not online is marked, and picking them shows a warning.
import { state } from "../state.js";
import { api } from "../api.js";
import { h, toast } from "../dom.js";
import { list, nameOf } from "../format.js";
import { PRESENCE_LABEL } from "../presence.js";

let refreshOpen = null;  // re-labels the open dialog after a presence change, else null

/** A live `agent.presence` event: update the directory and the dialog if it is open. */
export function onPresence(e) {
  const agent = (state.agents || []).find((a) => a.id === e.agent_id);
  if (agent) agent.presence = e.presence;
  if (refreshOpen) refreshOpen();
}

/**
 * Open the dialog for `ticket`; POSTs /api/v1/tickets/{id}/transfer {agent_id, note, confirm} and
 * calls `done(updatedTicket)` when the server accepts it. `confirm` is true once the agent confirmed
 * taking a colleague's ticket. The directory is read afresh, for everyone's presence now.
 */
export async function transferDialog(ticket, done, confirm = false) {
  const res = await api("GET", "/api/v1/agents");
  if (res.ok) state.agents = list(res.data, "agents");
  const agents = (state.agents || []).filter((a) => !ticket.assignee || a.id !== ticket.assignee.id);
  const label = (a) => nameOf(a) + (a.presence && a.presence !== "online" ? " (" + PRESENCE_LABEL[a.presence] + ")" : "");
  const select = h("select", { "data-field": "transfer-agent", required: true, "aria-label": "Transfer to" },
    agents.map((a) => h("option", { value: a.id, "data-presence": a.presence || "" }, label(a))));
  const warning = h("p", { class: "warn", "data-field": "transfer-warning", role: "status", hidden: true });
  const note = h("textarea", { rows: 3, "data-field": "transfer-note", placeholder: "A note for your colleague (internal)" });
  const refresh = () => {
    for (const option of select.options) {
      const agent = agents.find((a) => String(a.id) === option.value);
      if (agent) { option.textContent = label(agent); option.dataset.presence = agent.presence || ""; }
    }
    const chosen = agents.find((a) => String(a.id) === select.value);
    const away = chosen && chosen.presence && chosen.presence !== "online";
    warning.hidden = !away;
    warning.textContent = away ? nameOf(chosen) + " is " + PRESENCE_LABEL[chosen.presence]
      + ": they may not see this ticket soon." : "";
  };
  select.addEventListener("change", refresh);
  const dialog = h("dialog", { class: "card dialog" },
    h("form", { method: "dialog", "data-form": "transfer" },
      h("h2", {}, "Transfer ticket"),
      h("label", {}, "To", select), warning, h("label", {}, "Note", note),
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { type: "submit", class: "primary", "data-action": "transfer-confirm" }, "Transfer"))));
  dialog.addEventListener("close", () => { refreshOpen = null; dialog.remove(); });
  dialog.querySelector("form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const res = await api("POST", "/api/v1/tickets/" + ticket.id + "/transfer", { agent_id: parseInt(select.value, 10), note: note.value, confirm });
    if (!res.ok) { toast(res.data.error || "Transfer failed", "error"); return; }
    dialog.close();
    toast("Transferred to " + nameOf(agents.find((a) => String(a.id) === select.value)));
    done(res.data.ticket || res.data);
  });
  refreshOpen = refresh;
  refresh();
  document.body.append(dialog);
  dialog.showModal();
}
