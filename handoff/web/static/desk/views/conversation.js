// A conversation opened from the Conversations list, read-only (issue 15): its whole timeline
// (ended ones too), who answers it, and "Take over" while the AI has it, or a link to its open
// ticket. Nothing can be written here: replies belong to a ticket.
import { KIND } from "../kinds.js";
import { state, ticketEls } from "../state.js";
import { api } from "../api.js";
import { badge, h, stateBadge } from "../dom.js";
import { contactName, whoAnswers } from "../format.js";
import { takeover } from "../actions.js";
import { appendMessage, renderTimeline } from "./timeline.js";
import { labelsEditor, showLabels } from "./labels.js";

let shown = null;  // the conversation id on screen, else null
let arriving = null;  // live events that came while the page loaded, applied once it has

/** Show conversation `id` (GET /api/v1/conversations/{id}). */
export async function viewConversation(id) {
  const seq = state.viewSeq = state.viewSeq + 1;
  shown = id;
  arriving = [];
  const res = await api("GET", "/api/v1/conversations/" + id);
  if (seq !== state.viewSeq) return;
  const early = arriving;
  arriving = null;
  const $view = document.getElementById("view");
  if (!res.ok) { $view.replaceChildren(h("p", { class: "empty" }, res.data.error || "Conversation not found")); return; }
  const c = res.data;
  state.conversation = c; state.seen = new Set();
  ticketEls.timeline = h("div", { class: "timeline", role: "log", "aria-label": "Conversation" });
  $view.replaceChildren(h("div", { class: "ticket conversation-page", "data-conversation": c.id },
    h("section", { class: "ticket-main" },
      h("div", { class: "ticket-head" },
        h("div", {}, h("h1", { class: "subject" }, contactName(c)),
          h("div", { class: "meta" }, stateBadge(c.state), " ", badge(c.channel || "", "channel"), " ",
            h("span", { "data-field": "answers" }, "Answered by: " + whoAnswers(c, state.me)),
            c.language ? " · " + c.language : "", " · #" + c.id), labelsEditor(c)),
        h("div", { class: "ticket-actions" }, action(c))),
      ticketEls.timeline,
      h("p", { class: "read-only", "data-field": "read-only" }, readOnlyNote(c)))));
  renderTimeline(c);
  for (const e of early) onConversationEvent(e);
}

function action(c) {
  if (c.state === "bot") {
    return h("button", { type: "button", class: "primary", "data-action": "takeover", onclick: (ev) => takeover(c.id, ev.target) }, "Take over");
  }
  if (c.open_ticket_id) return h("a", { class: "button primary", href: "#ticket/" + c.open_ticket_id, "data-action": "view-ticket" }, "Open ticket");
  return null;
}

function readOnlyNote(c) {
  if (c.state === "bot") return "Read-only: the AI is answering. Take over to reply.";
  if (c.state === "ended") return "Read-only: this conversation has ended. A new message from the customer starts a new one.";
  return "Read-only: replies are written on the ticket.";
}

/** Apply a live event to the conversation shown; false when it is not shown (the caller handles the event). */
export function onConversationEvent(e) {
  if (shown === null || !state.route.startsWith("conversation/")) { shown = null; return false; }
  if (arriving) { arriving.push(e); return true; }
  const here = e.conversation_id === shown;
  if (e.kind === KIND.MESSAGE_CREATED && here && e.message) appendMessage(e.message);
  else if (e.kind === KIND.CONVERSATION_LABELS && here) showLabels(shown, e.labels || []);
  else if ((e.kind === KIND.CONVERSATION_UPDATED && here && e.state && e.state !== state.conversation.state) ||
    e.kind === KIND.STREAM_LAGGED) viewConversation(shown);  // who answers changed: draw the page again
  return true;
}
