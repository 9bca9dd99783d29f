// Telling an agent about new work (issue 15): unread counts in the nav ("My tickets (3)") and the
// document title, an in-page toast, and, when the agent opted in, a browser notification
// (Notification API) for a customer message on their ticket, a ticket transferred to them and
// a new unassigned ticket. The stream sends each agent only their ticket.message and
// ticket.assigned events (handoff/desk/live.py).
import { KIND } from "./kinds.js";
import { state } from "./state.js";
import { api } from "./api.js";
import { h, toast } from "./dom.js";
import { shiftNotice, titleWith, withCount } from "./format.js";

const OPT_IN = "handoff.notifications";
let timer = null;

/** Reload the unread counts (GET /api/v1/unread) into the nav and the title, 200 ms after the last call. */
export function refreshUnread() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    const res = await api("GET", "/api/v1/unread").catch(() => null);
    if (!res || !res.ok) return;
    showCounts(res.data.mine || 0, res.data.unassigned || 0);
  }, 200);
}

function showCounts(mine, unassigned) {
  for (const [view, label, count] of [["tickets/mine", "My tickets", mine], ["tickets/unassigned", "Unassigned", unassigned]]) {
    const link = document.querySelector(`nav a[data-view="${view}"]`);
    if (link) { link.textContent = withCount(label, count); link.dataset.unread = String(count); }
  }
  document.title = titleWith(mine + unassigned);
}

/** A live event: a toast and a browser notification when it is news for this agent; the counts follow. */
export function onShiftEvent(e) {
  const kind = e.kind;
  if (kind === KIND.TICKET_MESSAGE || kind === KIND.TICKET_ASSIGNED || kind === KIND.TICKET_CREATED || kind === KIND.TICKET_UPDATED) refreshUnread();
  const shown = state.ticket ? state.ticket.id : null;
  const notice = shiftNotice(e, state.me, shown);
  if (!notice) return;
  const link = h("a", { href: "#ticket/" + notice.ticketId, class: "toast-link" }, "Open");
  toast(notice.title + (notice.body ? ": " + notice.body : ""), "news", link);
  if (wantsNotifications() && (document.hidden || !document.hasFocus())) {
    const n = new Notification(notice.title, { body: notice.body, tag: "handoff-ticket-" + notice.ticketId });
    n.onclick = () => { window.focus(); location.hash = "#ticket/" + notice.ticketId; n.close(); };
  }
}

function wantsNotifications() {
  return "Notification" in window && Notification.permission === "granted" && localStorage.getItem(OPT_IN) === "on";
}

/** The top bar's "Notify me" toggle: asks for the browser's permission once, remembers the choice. */
export function notificationToggle() {
  const button = h("button", { type: "button", class: "link", "data-action": "notifications" });
  const label = () => {
    const on = wantsNotifications();
    button.textContent = on ? "Notifications on" : "Notify me";
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.hidden = !("Notification" in window);
  };
  button.addEventListener("click", async () => {
    if (wantsNotifications()) localStorage.setItem(OPT_IN, "off");
    else {
      const permission = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
      if (permission === "granted") localStorage.setItem(OPT_IN, "on");
      else toast("The browser blocks notifications for this site", "warn");
    }
    label();
  });
  label();
  return button;
}
