// The Conversations page: every conversation, newest activity first, each row saying who the
// customer is, what was said last and by whom, the language, channel, state and who answers;
// a row opens the conversation read-only, with "Take over" while the AI has it.
import { state } from "../state.js";
import { badge, h, stateBadge } from "../dom.js";
import { contactName, lastLine, nameOf, when, whoAnswers } from "../format.js";
import { takeover } from "../actions.js";
import { loadAgents } from "../api.js";
import { lastReplyBy } from "../labeling.js";
import { listView } from "./list.js";
import { labelChips, loadLabels } from "./labels.js";

/** The label filter of both lists: any label, or one by name. */
export const LABEL_FILTER = { name: "label", label: "Label", any: "All labels",
  options: async () => (await loadLabels(true)).map((l) => [l.name, l.name]) };
const RESPONDED_BY = { name: "responded_by", label: "Last reply by", any: "Last reply by anyone",
  options: async () => [["bot", "AI"], ["me", "Me"], ...(await loadAgents()).map((a) => [String(a.id), nameOf(a)])] };
const AGENT_TYPE = { name: "agent_type", label: "Last reply from", any: "AI or human",
  options: async () => [["bot", "AI"], ["human", "Human"]] };

/** Show the page (GET /api/v1/conversations). */
export function viewConversations() {
  return listView({ title: "Conversations", path: "/api/v1/conversations", key: "conversations", params: {},
    placeholder: "Search customers or ticket subjects", empty: "No conversations yet.",
    columns: ["Customer", "Last message", "Language", "Channel", "State", "Answered by", "Last activity", ""],
    filters: [LABEL_FILTER, RESPONDED_BY, AGENT_TYPE], row });
}

/** The unread badge of a row, or null. */
export function unreadBadge(n) {
  return n > 0 ? h("span", { class: "unread", "data-field": "unread", title: n + " unread", "aria-label": n + " unread" }, String(n)) : null;
}

/** A row's last message: who, then the text (cut by CSS). */
export function lastMessageCell(row) {
  const line = lastLine(row, state.me);
  return h("td", { class: "last", "data-label": "Last message" },
    line ? h("span", { class: "last-line", "data-field": "last-message" }, h("b", {}, line.who + ": "), line.text) : h("span", { class: "muted" }, "—"));
}

function row(c) {
  const ticketId = c.open_ticket_id || null;
  let action = h("a", { class: "button", href: "#conversation/" + c.id, "data-action": "open-conversation" }, "Open");
  if (c.state === "bot") action = [action, " ", h("button", { type: "button", class: "primary", "data-action": "takeover", onclick: (ev) => takeover(c.id, ev.target) }, "Take over")];
  else if (c.state === "human" && ticketId) action = [action, " ", h("a", { class: "button primary", href: "#ticket/" + ticketId, "data-action": "view-ticket" }, "View ticket")];
  return h("tr", { "data-conversation": c.id, "data-state": c.state },
    h("td", { "data-label": "Customer" }, h("a", { href: "#conversation/" + c.id, class: "who" }, h("strong", {}, contactName(c))), unreadBadge(c.unread),
      labelChips(c.labels)),
    lastMessageCell(c),
    h("td", { "data-label": "Language", "data-field": "language" }, c.language || "—"),
    h("td", { "data-label": "Channel" }, badge(c.channel || "", "channel")),
    h("td", { "data-label": "State" }, stateBadge(c.state)),
    h("td", { "data-label": "Answered by" }, h("span", { "data-field": "answers" }, whoAnswers(c, state.me)),
      lastReplyBy(c, state.me) ? h("span", { class: "last-reply", "data-field": "last-reply" }, "last reply: " + lastReplyBy(c, state.me)) : null),
    h("td", { class: "muted", "data-label": "Last activity" }, when(c.last_activity_at || c.created_at)),
    h("td", { class: "actions" }, action));
}
