// The Transfer dialog: pick a colleague, add an internal note, POST the transfer.
import { state } from "../state.js";
import { api, loadAgents } from "../api.js";
import { h, toast } from "../dom.js";
import { nameOf } from "../format.js";

/**
 * Open the dialog for `ticket`; POSTs /api/v1/tickets/{id}/transfer {agent_id, note, confirm} and
 * calls `done(updatedTicket)` when the server accepts it. `confirm` is true once the agent confirmed
 * taking a colleague's ticket.
 */
export async function transferDialog(ticket, done, confirm = false) {
  await loadAgents();
  const select = h("select", { "data-field": "transfer-agent", required: true, "aria-label": "Transfer to" },
    state.agents.filter((a) => !ticket.assignee || a.id !== ticket.assignee.id).map((a) => h("option", { value: a.id }, nameOf(a))));
  const note = h("textarea", { rows: 3, "data-field": "transfer-note", placeholder: "A note for your colleague (internal)" });
  const dialog = h("dialog", { class: "card dialog" },
    h("form", { method: "dialog", "data-form": "transfer" },
      h("h2", {}, "Transfer ticket"),
      h("label", {}, "To", select), h("label", {}, "Note", note),
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { type: "submit", class: "primary", "data-action": "transfer-confirm" }, "Transfer"))));
  dialog.addEventListener("close", () => dialog.remove());
  dialog.querySelector("form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const res = await api("POST", "/api/v1/tickets/" + ticket.id + "/transfer", { agent_id: parseInt(select.value, 10), note: note.value, confirm });
    if (!res.ok) { toast(res.data.error || "Transfer failed", "error"); return; }
    dialog.close();
    toast("Transferred to " + select.selectedOptions[0].textContent);
    done(res.data.ticket || res.data);
  });
  document.body.append(dialog);
  dialog.showModal();
}
