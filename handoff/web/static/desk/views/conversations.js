// The Conversations page: every conversation, AI ones first, with "Take over" or "View ticket".
import { badge, h, stateBadge } from "../dom.js";
import { contactName, when } from "../format.js";
import { takeover } from "../actions.js";
import { listView } from "./list.js";

const STATE_ORDER = { bot: 0, human: 1, ended: 2 };

/** Show the page (GET /api/v1/conversations). */
export function viewConversations() {
  return listView({ title: "Conversations", path: "/api/v1/conversations", key: "conversations", params: {},
    placeholder: "Search customers or ticket subjects", empty: "No conversations yet.",
    columns: ["Customer", "Channel", "State", "Last activity", ""],
    sort: (a, b) => (STATE_ORDER[a.state] - STATE_ORDER[b.state]) || (b.id - a.id),
    row });
}

function row(c) {
  const ticketId = c.open_ticket_id || null;
  let action = null;
  if (c.state === "bot") action = h("button", { type: "button", class: "primary", "data-action": "takeover", onclick: (ev) => takeover(c.id, ev.target) }, "Take over");
  else if (c.state === "human" && ticketId) action = h("a", { class: "button", href: "#ticket/" + ticketId, "data-action": "view-ticket" }, "View ticket");
  return h("tr", { "data-conversation": c.id, "data-state": c.state },
    h("td", {}, h("strong", {}, contactName(c)), h("div", { class: "muted" }, (c.contact && c.contact.external_id) || "")),
    h("td", {}, badge(c.channel || "", "channel")),
    h("td", {}, stateBadge(c.state)),
    h("td", { class: "muted" }, when(c.last_activity_at || c.updated_at || c.created_at)),
    h("td", { class: "actions" }, action));
}
