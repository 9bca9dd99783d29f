// Pure formatting and rendering decisions of the desk: no DOM, no network, so Node's test
// runner can check them (tests/web/js/). Shapes are those of the REST API (/api/v1).
import { KIND } from "./kinds.js";
import { labelChangeText } from "./labeling.js";

// Labels of conversation states (bot, human, ended) and ticket statuses.
export const STATE_LABELS = { bot: "AI", human: "Live chat", ended: "Ended", open: "Open", on_you: "On you",
  on_customer: "Waiting on customer", closed: "Closed" };

// A person's reply written in the provider's own app, not in handoff (see handoff/changes.py).
export const OUTSIDE_APPS = { instagram_app: "Replied from the Instagram app", messenger_app: "Replied from outside handoff" };

/** The label of a conversation state or ticket status; an unknown one as it is. */
export function stateLabel(value) { return STATE_LABELS[value] || value; }

/**
 * A timestamp (ISO string, or epoch seconds as a number) as the agent reads it: the time of day
 * when it is today (in the browser's time zone), else date and time; "" when absent or invalid.
 * `now` is the current Date (tests pass one).
 */
export function when(value, now = new Date()) {
  if (!value) return "";
  const d = new Date(typeof value === "number" ? value * 1000 : value);
  if (isNaN(d)) return "";
  const today = now.toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleString();
}

/** A person's display name: an agent object ({name, email, id}), a plain string, or "" for none. */
export function nameOf(person) {
  if (!person) return "";
  if (typeof person === "string") return person;
  return person.name || person.email || ("#" + (person.id ?? ""));
}

/**
 * The customer of a conversation or ticket row by their best identifier: name, else email, else
 * their id on the channel (phone number, PSID, visitor id…), else "Visitor".
 */
export function contactName(c) {
  const contact = c && (c.contact || {});
  return (contact && (contact.name || contact.email || contact.external_id)) ||
    (c && (c.contact_name || c.contact_external_id)) || "Visitor";
}

// Who wrote a list row's last message, as the row says it.
const AUTHOR_LABELS = { customer: "Customer", bot: "AI", agent: "Agent" };

/**
 * A row's last message as one line: {who, text} ("AI", "You", an agent's name, "Customer"), or
 * null when it has none. `me` is the signed-in agent; `row.last_responder.agent` names an agent.
 */
export function lastLine(row, me) {
  const m = row && row.last_message;
  if (!m) return null;
  let who = AUTHOR_LABELS[m.author_kind] || m.author_kind;
  const agent = row.last_responder && row.last_responder.kind === "agent" && row.last_responder.agent;
  if (m.author_kind === "agent" && agent) who = me && agent.id === me.id ? "You" : nameOf(agent);
  return { who, text: m.text || "" };
}

/** Who answers a conversation now: "AI", the assignee's name ("You" for `me`), "Queue" or "—" (ended). */
export function whoAnswers(row, me) {
  if (row.state === "bot") return "AI";
  if (row.state === "ended") return "—";
  if (!row.assignee) return "Queue";
  return me && row.assignee.id === me.id ? "You" : nameOf(row.assignee);
}

/**
 * What `me` may do with a ticket, mirroring the API's rules (handoff/desk/rules.py): {reply,
 * note, claim, transfer, allow_ai, close, confirm}; `confirm` says transfer, allow-AI and close
 * need a confirmation (someone else's ticket).
 */
export function permissionsFor(ticket, me) {
  const live = ticket.status !== "closed";
  const free = !ticket.assignee;
  const mine = !free && !!me && ticket.assignee.id === me.id;
  return { reply: live && (mine || free), note: live, claim: live && free, transfer: live, allow_ai: live,
    close: live, confirm: live && !mine && !free };
}

/** The document title with the unread count in front: "(3) handoff desk", or "handoff desk". */
export function titleWith(unread, base = "handoff desk") { return unread > 0 ? "(" + unread + ") " + base : base; }

/** A nav label with its count: "My tickets (3)", or the label alone for 0. */
export function withCount(label, count) { return count > 0 ? label + " (" + count + ")" : label; }

/**
 * What to tell `me` about a live event, or null: {title, body, ticketId} for a customer message on
 * a ticket (ticket.message, unless `shownTicketId` is that ticket), a ticket transferred to them
 * (ticket.assigned), or a new unassigned ticket (ticket.created without an assignee).
 */
export function shiftNotice(e, me, shownTicketId) {
  const kind = e.kind;
  if (kind === KIND.TICKET_MESSAGE && e.ticket_id !== shownTicketId) {
    const who = e.contact_name || "The customer";
    const title = e.assignee_id ? who + " wrote on your ticket #" + e.ticket_id : who + " wrote on unassigned ticket #" + e.ticket_id;
    return { title, body: e.text || "", ticketId: e.ticket_id };
  }
  if (kind === KIND.TICKET_ASSIGNED && me && e.agent_id === me.id) {
    const title = e.by ? nameOf(e.by) + " transferred ticket #" + e.ticket_id + " to you"
      : "Ticket #" + e.ticket_id + " was routed to you";  // no `by`: routing gave it (an escalation)
    return { title, body: "", ticketId: e.ticket_id };
  }
  if (kind === KIND.MENTION && e.notification && e.notification.ticket_id && e.notification.ticket_id !== shownTicketId) {
    const n = e.notification;
    return { title: (nameOf(n.actor) || "Someone") + " mentioned you on ticket #" + n.ticket_id, body: n.text || "", ticketId: n.ticket_id };
  }
  if (kind === KIND.TICKET_CREATED && e.ticket && !e.ticket.assignee) {
    return { title: "New unassigned ticket #" + e.ticket.id, body: e.ticket.subject || "", ticketId: e.ticket.id };
  }
  return null;
}

/** The ticket's status after a customer message: waiting on the customer becomes on you (transitions.customer_wrote). */
export function statusAfterCustomerMessage(status) { return status === "on_customer" ? "on_you" : status; }

/** The array in an API answer: the answer itself, its `key` field, or its `items`; [] otherwise. */
export function list(data, key) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data[key])) return data[key];
  if (data && Array.isArray(data.items)) return data.items;
  return [];
}

/** A file size in bytes as "512 B", "12 KB" or "3.4 MB". */
export function sizeText(bytes) {
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return Math.round(bytes / 1024) + " KB";
  return (bytes / (1024 * 1024)).toFixed(1) + " MB";
}

/** Who wrote a message: "customer", "bot", "agent" or "system". */
export function authorOf(m) { return m.author_kind || m.author || (m.direction === "incoming" ? "customer" : "system"); }

/**
 * How a timeline message is drawn: "separator" (Live Chat / AI Resumed), "notice" (a system
 * notice) or "message" (a customer's, bot's or person's message).
 */
export function messageKind(m) {
  if (m.direction === "activity" || m.kind === "separator") return "separator";
  if (m.notice || authorOf(m) === "system") return "notice";
  return "message";
}

/**
 * The name shown above a message: the customer's (`customer` is the name to use), the AI's, the
 * agent's (`agentName(id)` looks one up by id), the provider's app for a reply written there, or "Agent".
 */
export function senderName(m, customer, agentName) {
  const author = authorOf(m);
  if (author === "customer") {
    // several people may write in one email thread: each message names its own sender
    const who = m.sender ? m.sender.name || m.sender.id : null;
    return (who || customer) + (m.sender && m.sender.automated ? " (automated)" : "");
  }
  if (author === "bot") return "AI assistant";
  return (m.agent && m.agent.name) || (m.agent ? agentName(m.agent.id) : OUTSIDE_APPS[m.origin] || "Agent");
}

/** The sentence for a timeline event ({kind, data}); `agent` names who did it. */
export function eventLabel(e, agent) {
  const data = e.data || {};
  const labels = {
    takeover: agent + " took over", escalated: "Escalated to a person" + (data.reason ? ": " + data.reason : ""),
    claimed: agent + " assigned the ticket to themselves",
    auto_assigned: "Routed to " + agent + " (online, with room)",
    transferred: agent + " transferred the ticket to " + (nameOf(data.to_agent) || "a colleague"),
    ai_resumed: agent + " allowed AI replies", closed: agent + " closed the ticket",
    delivery_failed: "A message could not be delivered" + (data.reason ? ": " + data.reason : ""),
    ended: "The conversation ended" + (data.reason ? " (" + data.reason + ")" : ""),
    bot_reply_dropped: "A bot reply was dropped: " + (data.reason || "the conversation changed owner"),
    "message.edited": "The customer edited a message", "message.deleted": "The customer deleted a message",
    outside_reply: "A person replied from outside handoff", labels_changed: agent + " " + labelChangeText(data),
    bot_replies_capped: "The AI stopped answering " + (data.address || "this address") + ": " + (data.limit || "too many")
      + " replies in the last hour (a mail loop?)",
  };
  return labels[e.kind] || e.kind.replace(/_/g, " ");
}

/**
 * A conversation's messages and events as one timeline, oldest first (messages of the same
 * instant by id): [{at, m}] for a message, [{at, e}] for an event; events without a kind are left out.
 */
export function timelineItems(data) {
  const messages = list(data.messages, "messages").map((m) => ({ at: m.created_at, m }));
  const events = list(data.events, "events").filter((e) => e && e.kind).map((e) => ({ at: e.created_at, e }));
  return messages.concat(events).sort((a, b) => new Date(a.at) - new Date(b.at) || ((a.m ? a.m.id : 0) - (b.m ? b.m.id : 0)));
}

/**
 * Where an attachment's link points, relative to the page at `base`: our own files (/media/, older
 * /widget/files/) by path, so they load from this server whatever HANDOFF_PUBLIC_URL says; other
 * http(s) URLs as they are; anything else (javascript:, data:, unparsable) null.
 */
export function attachmentUrl(a, base) {
  if (!a.url) return null;
  try {
    const u = new URL(a.url, base);
    if (u.pathname.startsWith("/media/") || u.pathname.startsWith("/widget/files/")) return u.pathname;
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

/** Whether an attachment shows as an image thumbnail (the types browsers draw safely). */
export function isImage(a) { return /^image\/(png|jpeg|gif|webp)$/.test(a.content_type || ""); }
