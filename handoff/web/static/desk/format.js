// Pure formatting and rendering decisions of the desk: no DOM, no network, so Node's test
// runner can check them (tests/web/js/). Shapes are those of the REST API (/api/v1).

// Labels of conversation states (bot, human, ended) and ticket statuses.
export const STATE_LABELS = { bot: "AI", human: "Live chat", ended: "Ended", open: "Open", on_you: "With agent",
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

/** The customer's name on a conversation or ticket row, "Visitor" when nothing names them. */
export function contactName(c) {
  const contact = c && (c.contact || {});
  return (contact && (contact.name || contact.email)) || (c && (c.contact_name || c.contact_external_id)) || "Visitor";
}

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
    transferred: agent + " transferred the ticket to " + (nameOf(data.to_agent) || "a colleague"),
    ai_resumed: agent + " allowed AI replies", closed: agent + " closed the ticket",
    delivery_failed: "A message could not be delivered" + (data.reason ? ": " + data.reason : ""),
    ended: "The conversation ended" + (data.reason ? " (" + data.reason + ")" : ""),
    bot_reply_dropped: "A bot reply was dropped: " + (data.reason || "the conversation changed owner"),
    "message.edited": "The customer edited a message", "message.deleted": "The customer deleted a message",
    outside_reply: "A person replied from outside handoff",
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
