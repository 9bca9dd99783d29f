// The agent's mentions (issue 16, item 2): the "Mentions (n)" nav link counts the unread ones;
// its page (#notifications) lists them newest first (GET /api/v1/notifications, "Load more"
// pages), each linking to its ticket; opening one marks it read, and "Mark all read" marks them
// all. A `mention` event (only ever the mentioned agent's: handoff/desk/live.py) updates both;
// one on the ticket already shown is read at once. Opening a ticket reads its mentions.
import { state } from "../state.js";
import { api } from "../api.js";
import { h, toast } from "../dom.js";
import { nameOf, when, withCount } from "../format.js";

let unread = null;  // not known until the first count arrives

/** Reload the unread count into the nav link. */
export async function refreshMentions() {
  const res = await api("GET", "/api/v1/notifications?limit=1").catch(() => null);
  if (res && res.ok) showCount(res.data.unread || 0);
}

function showCount(count) {
  unread = count;
  const link = document.querySelector('nav a[data-view="notifications"]');
  if (link) { link.textContent = withCount("Mentions", count); link.dataset.unread = String(count); }
}

/** A live `mention` event ({agent_id, notification}) for this agent. */
export function onMentionEvent(e) {
  const n = e.notification || {};
  if (state.ticket && n.ticket_id === state.ticket.id) { markRead([n.id]); return; }
  showCount((unread || 0) + 1);
  if (state.route === "notifications") viewNotifications();
}

/** The ticket `ticketId` is shown: its unread mentions of this agent are read. */
export async function readForTicket(ticketId) {
  if (unread === 0) return;
  const res = await api("GET", "/api/v1/notifications?limit=200").catch(() => null);
  if (!res || !res.ok) return;
  const ids = (res.data.notifications || []).filter((n) => n.ticket_id === ticketId && !n.read_at).map((n) => n.id);
  if (ids.length) markRead(ids);
}

async function markRead(ids) {
  await Promise.all(ids.map((id) => api("POST", "/api/v1/notifications/" + id + "/read").catch(() => null)));
  refreshMentions();
}

function item(n) {
  const where = n.ticket_id ? "#ticket/" + n.ticket_id : "#conversation/" + n.conversation_id;
  const place = n.ticket_id ? "ticket #" + n.ticket_id : "conversation #" + n.conversation_id;
  return h("li", { class: "notification" + (n.read_at ? "" : " unread"), "data-notification": n.id,
    "data-unread": n.read_at ? "false" : "true" },
  h("a", { href: where, onclick: () => { if (!n.read_at) markRead([n.id]); } },
    (nameOf(n.actor) || "Someone") + " mentioned you on " + place + (n.contact_name ? " · " + n.contact_name : "")),
  h("time", { class: "muted" }, " " + when(n.created_at)),
  h("blockquote", { class: "note-text" }, n.text));
}

/** Show the mentions page. */
export async function viewNotifications() {
  const route = state.route;
  const items = h("ul", { class: "notifications", "data-field": "notifications" });
  const more = h("button", { type: "button", "data-action": "load-more", hidden: true }, "Load more");
  const readAll = h("button", { type: "button", "data-action": "read-all" }, "Mark all read");
  const empty = h("p", { class: "empty", hidden: true }, "Nobody has mentioned you yet. Colleagues mention you with @ in an internal note.");
  let next = null;
  async function load(before) {
    const res = await api("GET", "/api/v1/notifications" + (before ? "?before=" + encodeURIComponent(before) : ""));
    if (!res.ok || state.route !== route) { if (!res.ok) toast(res.data.error || "Mentions not loaded", "error"); return; }
    items.append(...(res.data.notifications || []).map(item));
    next = res.data.next_before;
    more.hidden = !next;
    empty.hidden = items.children.length > 0;
    showCount(res.data.unread || 0);
  }
  more.addEventListener("click", () => load(next));
  readAll.addEventListener("click", async () => {
    const res = await api("POST", "/api/v1/notifications/read-all");
    if (!res.ok) { toast(res.data.error || "Not marked", "error"); return; }
    for (const li of items.children) { li.classList.remove("unread"); li.dataset.unread = "false"; }
    showCount(0);
  });
  document.getElementById("view").replaceChildren(h("section", { class: "panel narrow" },
    h("div", { class: "list-head" }, h("h1", {}, "Mentions"), readAll), empty, items, more));
  await load(null);
}
