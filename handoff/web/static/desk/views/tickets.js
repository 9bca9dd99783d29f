// The ticket lists: My tickets, Unassigned (both live tickets only) and All tickets, newest
// activity first, each row with the agent's unread count and the conversation's last message.
import { badge, h, stateBadge } from "../dom.js";
import { contactName, nameOf, when } from "../format.js";
import { claim } from "../actions.js";
import { listView } from "./list.js";
import { LABEL_FILTER, lastMessageCell, unreadBadge } from "./conversations.js";
import { labelChips } from "./labels.js";

const LIVE = "open,on_you,on_customer";
const PARAMS = { mine: { assignee: "me", status: LIVE }, unassigned: { assignee: "none", status: LIVE } };
const TITLES = { mine: "My tickets", unassigned: "Unassigned", all: "All tickets" };

/** Show a ticket list (GET /api/v1/tickets); `which` is "mine", "unassigned" or "all". */
export function viewTickets(which) {
  return listView({ title: TITLES[which] || "Tickets", path: "/api/v1/tickets", key: "tickets", params: PARAMS[which] || {},
    placeholder: "Search subjects or customers", empty: "Nothing here.",
    columns: ["Subject", "Customer", "Last message", "Channel", "Status", "Assignee", "Last activity", ""],
    filters: [LABEL_FILTER], row });
}

function row(t) {
  return h("tr", { "data-ticket": t.id, "data-status": t.status, "data-unread": t.unread || 0 },
    h("td", { "data-label": "Subject" }, h("a", { href: "#ticket/" + t.id }, t.subject || ("Ticket #" + t.id)), unreadBadge(t.unread),
      labelChips(t.labels)),
    h("td", { "data-label": "Customer" }, contactName(t)),
    lastMessageCell(t),
    h("td", { "data-label": "Channel" }, badge(t.channel || "", "channel")),
    h("td", { "data-label": "Status" }, stateBadge(t.status)),
    h("td", { "data-label": "Assignee" }, nameOf(t.assignee) || h("span", { class: "muted" }, "unassigned")),
    h("td", { class: "muted", "data-label": "Last activity" }, when(t.last_activity_at || t.created_at)),
    h("td", { class: "actions" }, !t.assignee && t.status !== "closed"
      ? h("button", { type: "button", class: "primary", "data-action": "claim", onclick: (ev) => claim(t.id, ev.target) }, "Assign to me")
      : h("a", { class: "button", href: "#ticket/" + t.id }, "Open")));
}
