// The ticket page: header with status and actions (assign, transfer, allow AI, close), the
// timeline and composer, the AI summary and the customer's details, kept current by live events.
import { KIND } from "../kinds.js";
import { state, ticketEls } from "../state.js";
import { api, loadAgents } from "../api.js";
import { badge, h, stateBadge, toast } from "../dom.js";
import { authorOf, nameOf, permissionsFor, statusAfterCustomerMessage, when } from "../format.js";
import { claim } from "../actions.js";
import { appendEvent, appendMessage, renderTimeline, scrollTimeline } from "./timeline.js";
import { composerForm, showPermissions } from "./composer.js";
import { confirmDialog } from "./confirm.js";
import { transferDialog } from "./transfer.js";
import { refreshUnread } from "../notify.js";
import { labelsEditor, showLabels } from "./labels.js";

// Messages that arrive live while the timeline reloads are kept and drawn after the reloaded
// snapshot, which may have been read before they were stored; only the latest reload renders.
let reloads = 0;
let arrivedDuringReload = null;

/** Show ticket `id` (GET /api/v1/tickets/{id}, with its conversation), then the events buffered meanwhile. */
export async function viewTicket(id) {
  const seq = state.viewSeq = state.viewSeq + 1;
  reloads++; arrivedDuringReload = null;  // a timeline reload still in flight is for the page before
  const res = await api("GET", "/api/v1/tickets/" + id);
  if (seq !== state.viewSeq) return;  // a newer render of the page started meanwhile
  const $view = document.getElementById("view");
  if (!res.ok) { state.buffer = null; $view.replaceChildren(h("p", { class: "empty" }, res.data.error || "Ticket not found")); return; }
  const ticket = res.data;
  const conv = ticket.conversation || {};
  await loadAgents();
  if (seq !== state.viewSeq) return;
  state.ticket = ticket; state.conversation = conv; state.seen = new Set();

  ticketEls.subject = h("h1", { class: "subject" });
  ticketEls.meta = h("div", { class: "meta" });
  ticketEls.summary = h("p", { class: "summary", "data-field": "summary" });
  ticketEls.timeline = h("div", { class: "timeline", role: "log" });
  ticketEls.typing = h("div", { class: "typing", hidden: true }, "Customer is typing…");
  ticketEls.menu = h("div", { class: "menu", hidden: true, role: "menu" },
    h("button", { type: "button", role: "menuitem", "data-action": "allow-ai", onclick: () => act("allow-ai", "AI replies allowed: the ticket is closed") }, "Allow AI replies"),
    h("button", { type: "button", role: "menuitem", "data-action": "close", onclick: () => act("close", "Ticket closed") }, "Close ticket"));
  // The same ticket drawn again (a reload after a resync, a lag) keeps the composer on screen:
  // it is never detached, so focus, caret, IME composition, mode and an open list all stay.
  const kept = ticketEls.composer && ticketEls.composer.isConnected && ticketEls.composer.dataset.ticket === String(ticket.id)
    ? ticketEls.composer : null;
  const composer = kept || composerForm(ticket);
  const afterTransfer = (t) => { updateTicket(t); reloadTimeline(); };

  const head = h("div", { class: "ticket-head" }, h("div", {}, ticketEls.subject, ticketEls.meta),
    h("div", { class: "ticket-actions" },
      h("button", { type: "button", class: "primary", "data-action": "claim-here", onclick: (ev) => claim(ticket.id, ev.target) }, "Assign to me"),
      h("button", { type: "button", "data-action": "transfer", onclick: async () => {
        if (await confirmed("transfer")) transferDialog(state.ticket, afterTransfer, permissionsFor(state.ticket, state.me).confirm);
      } }, "Transfer"),
      h("div", { class: "menu-wrap" },
        h("button", { type: "button", class: "icon", "aria-haspopup": "menu", "aria-label": "More actions", "data-action": "menu",
          onclick: () => { ticketEls.menu.hidden = !ticketEls.menu.hidden; } }, "⋯"),
        ticketEls.menu)));
  const side = h("aside", { class: "ticket-side" },
    h("section", { class: "card" }, h("h2", {}, "AI summary"), ticketEls.summary),
    h("section", { class: "card", "data-card": "labels" }, h("h2", {}, "Labels"), labelsEditor(conv)),
    h("section", { class: "card" }, h("h2", {}, "Customer"), customerDetails(ticket, conv)));
  if (kept) {
    const main = kept.parentNode;
    for (const el of [...main.children]) if (el !== kept) el.remove();
    kept.before(head, ticketEls.timeline, ticketEls.typing);
    main.nextElementSibling.replaceWith(side);
  } else {
    $view.replaceChildren(h("div", { class: "ticket", "data-ticket": ticket.id },
      h("section", { class: "ticket-main" }, head, ticketEls.timeline, ticketEls.typing, composer), side));
  }
  updateTicket(ticket);
  renderTimeline(conv);
  refreshUnread();  // opening the ticket read it
  const buffered = state.buffer || [];
  state.buffer = null;
  for (const e of buffered) onTicketEvent(e);
}

function customerDetails(ticket, conv) {
  const contact = conv.contact || {};
  return h("dl", { class: "details" },
    h("dt", {}, "Name"), h("dd", { "data-field": "contact-name" }, contact.name || "—"),
    h("dt", {}, "Email"), h("dd", {}, contact.email || "—"),
    h("dt", {}, "Channel"), h("dd", {}, ticket.channel || conv.channel || ""),
    h("dt", {}, "Language"), h("dd", {}, ticket.language || conv.language || "—"),
    h("dt", {}, "Conversation"), h("dd", {}, "#" + ticket.conversation_id));
}

/** Merge `t` (a ticket from the API or a live event) into the page: header, summary, what a closed ticket hides. */
export function updateTicket(t) {
  state.ticket = Object.assign(state.ticket || {}, t);
  const ticket = state.ticket;
  const before = ticketEls.assigneeId;
  ticketEls.assigneeId = ticket.assignee ? ticket.assignee.id : null;
  ticketEls.subject.textContent = ticket.subject || ("Ticket #" + ticket.id);
  ticketEls.meta.replaceChildren(h("span", { "data-field": "status" }, stateBadge(ticket.status)), " ",
    badge(ticket.kind || "live_chat", "kind"), " ",
    h("span", { "data-field": "assignee" }, ticket.assignee ? "Assigned to " + nameOf(ticket.assignee) : "Unassigned"),
    " · #" + ticket.id + " · " + when(ticket.created_at));
  ticketEls.summary.textContent = ticket.summary || "The AI summary appears here when it is ready…";
  ticketEls.summary.classList.toggle("pending", !ticket.summary);
  const closed = ticket.status === "closed";
  const may = permissionsFor(ticket, state.me);
  ticketEls.composer.hidden = closed;
  for (const b of document.querySelectorAll(".ticket-actions button")) b.disabled = closed;
  const claimHere = document.querySelector("[data-action=claim-here]");
  if (claimHere) claimHere.hidden = !may.claim;
  // A new assignee (a transfer, a claim) puts the composer back on Reply, or on notes only.
  showPermissions(may, ticket.assignee, before !== undefined && before !== ticketEls.assigneeId);
}

const CONFIRM_WORDS = { "allow-ai": ["hand this ticket back to the AI", "Allow AI replies"], close: ["close this ticket", "Close ticket"],
  transfer: ["transfer this ticket", "Transfer"] };

/**
 * Whether the agent goes ahead with `action` on the ticket shown: at once on their own or an
 * unassigned ticket; after a confirmation on a colleague's (then the API needs {confirm: true}).
 */
export async function confirmed(action) {
  const t = state.ticket;
  if (!permissionsFor(t, state.me).confirm) return true;
  const [what, ok] = CONFIRM_WORDS[action];
  return confirmDialog(nameOf(t.assignee) + " is answering this customer. Do you want to " + what + " anyway?", ok);
}

// POST /api/v1/tickets/{id}/{action} from the ⋯ menu (confirmed on a colleague's ticket), then toast `done`.
async function act(action, done) {
  ticketEls.menu.hidden = true;
  if (!await confirmed(action)) return;
  const confirm = permissionsFor(state.ticket, state.me).confirm;
  let res = await api("POST", "/api/v1/tickets/" + state.ticket.id + "/" + action, { confirm });
  if (res.status === 409 && res.data.confirm_required) {  // assigned to a colleague meanwhile
    if (res.data.assignee) updateTicket({ assignee: res.data.assignee });
    if (!await confirmed(action)) return;
    res = await api("POST", "/api/v1/tickets/" + state.ticket.id + "/" + action, { confirm: true });
  }
  if (!res.ok) { toast(res.data.error || "Failed", "error"); return; }
  toast(done);
  updateTicket(res.data.ticket || res.data);
}

async function reloadTimeline() {
  if (!state.ticket) return;
  const seq = ++reloads;
  const arrived = arrivedDuringReload = arrivedDuringReload || [];
  const res = await api("GET", "/api/v1/conversations/" + state.ticket.conversation_id);
  if (seq !== reloads) return;
  arrivedDuringReload = null;
  if (res.ok && state.ticket) {
    state.seen = new Set(); state.conversation = res.data; renderTimeline(res.data);
    for (const m of arrived) appendMessage(m);
  }
}

/** Apply a live event ({kind, data}) to the ticket page shown; events of other conversations are ignored. */
export function onTicketEvent(e) {
  const kind = e.kind || e.type;
  const data = e.data || e;
  const t = state.ticket;
  const here = data.conversation_id === t.conversation_id;
  if (kind === KIND.MESSAGE_CREATED && here && data.message) {
    if (arrivedDuringReload) arrivedDuringReload.push(data.message);
    appendMessage(data.message);
    if (authorOf(data.message) === "customer" && data.message.ticket_id === t.id) {
      updateTicket({ status: statusAfterCustomerMessage(t.status) });  // the badge follows the customer's turn
      if (!document.hidden) api("POST", "/api/v1/tickets/" + t.id + "/read").then(refreshUnread);
    }
  } else if (kind === KIND.TICKET_MESSAGE && data.ticket_id === t.id && data.status) {
    updateTicket({ status: data.status });
  } else if (kind === KIND.TIMELINE_EVENT && here && data.event) {
    appendEvent(Object.assign({ created_at: new Date().toISOString() }, data.event)); scrollTimeline();
  } else if (kind === KIND.MESSAGE_UPDATED && here) reloadTimeline();
  else if (kind === KIND.CONVERSATION_LABELS && here) showLabels(t.conversation_id, data.labels || []);
  else if (kind === KIND.STREAM_LAGGED) viewTicket(t.id);
  else if (kind === KIND.CONVERSATION_UPDATED && here && data.contact) {
    state.conversation.contact = Object.assign({}, state.conversation.contact, data.contact);
    document.querySelector("[data-field=contact-name]").textContent = data.contact.name || "—";
  } else if ((kind === KIND.TICKET_UPDATED || kind === KIND.TICKET_SUMMARY) && data.ticket && data.ticket.id === t.id) updateTicket(data.ticket);
  else if (kind === KIND.TYPING && here && data.who === "customer") {
    ticketEls.typing.hidden = !data.typing;
    clearTimeout(state.customerTypingTimer);
    if (data.typing) state.customerTypingTimer = setTimeout(() => { ticketEls.typing.hidden = true; }, 6000);
  }
}
