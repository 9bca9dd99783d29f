// The ticket page's timeline: messages, notices, separators and events in time order, and
// the ones live events add. Each message is shown once (state.seen), all of it as text.
import { state, ticketEls } from "../state.js";
import { badge, h } from "../dom.js";
import { attachmentUrl, authorOf, contactName, eventLabel, isImage, messageKind, nameOf, senderName,
  sizeText, timelineItems, when } from "../format.js";

/** Draw a conversation ({messages, events}) as the whole timeline, scrolled to its end. */
export function renderTimeline(data) {
  ticketEls.timeline.replaceChildren();
  for (const item of timelineItems(data)) {
    if (item.m) appendMessage(item.m, true); else appendEvent(item.e);
  }
  scrollTimeline();
}

/** Scroll the timeline to its newest item. */
export function scrollTimeline() { ticketEls.timeline.scrollTop = ticketEls.timeline.scrollHeight; }

/** Add a message (API shape) unless it is shown already; `bulk` leaves the scrolling to the caller. */
export function appendMessage(m, bulk) {
  if (!ticketEls.timeline || (m.id && state.seen.has(m.id))) return;
  if (m.id) state.seen.add(m.id);
  const author = authorOf(m);
  const kind = messageKind(m);
  let el;
  if (kind === "separator") {
    el = h("div", { class: "separator", role: "separator", "data-id": m.id }, h("span", {}, m.text || m.notice || ""));
  } else if (kind === "notice") {
    el = h("div", { class: "notice", "data-id": m.id, "data-notice": m.notice || "" }, m.text || "",
      h("time", {}, when(m.created_at)),
      m.delivery_status === "skipped" ? badge("not sent on this channel", "skipped") : null);
  } else {
    const who = senderName(m, contactName(state.conversation), agentName);
    el = h("div", { class: "msg " + author + (m.private ? " private" : ""), "data-id": m.id, "data-author": author },
      h("div", { class: "who" }, who, m.private ? badge("internal note", "note") : null, h("time", {}, when(m.created_at)),
        m.delivery_status === "failed" ? badge("failed", "failed") : null),
      m.deleted ? h("div", { class: "text deleted" }, "This message was deleted")
        : m.text || !(m.attachments || []).length ? h("div", { class: "text" }, m.text || "") : null,
      m.edited_at && !m.deleted ? editedMarker(m) : null,
      (m.attachments || []).map(attachmentLink));
  }
  ticketEls.timeline.append(el);
  if (author === "customer") ticketEls.typing.hidden = true;
  if (!bulk) scrollTimeline();
}

/** Add a timeline event ({kind, data, agent_id, created_at}). */
export function appendEvent(e) {
  const agent = e.agent_id ? agentName(e.agent_id) : "The system";
  ticketEls.timeline.append(h("div", { class: "event", "data-event": e.kind }, eventLabel(e, agent), h("time", {}, when(e.created_at))));
}

function agentName(id) {
  const agent = (state.agents || []).find((a) => a.id === id);
  return agent ? nameOf(agent) : "An agent";
}

// "edited", with the earlier texts on expand (and on hover).
function editedMarker(m) {
  const earlier = (m.revisions || []).map((r) => r.text);
  return h("details", { class: "edited", "data-field": "edited", title: earlier.join("\n") },
    h("summary", {}, "edited"), earlier.map((text) => h("div", { class: "revision" }, text)));
}

function attachmentLink(a) {
  const url = attachmentUrl(a, location.href);
  const name = a.filename || "attachment";
  if (!url) {
    return a.note ? h("span", { class: "attachment", "data-attachment": name },
      "📎 " + name + (a.size ? " (" + sizeText(a.size) + ")" : "") + " — " + a.note) : null;
  }
  const image = isImage(a);
  return h("a", { class: "attachment" + (image ? " thumb" : ""), href: url, target: "_blank", rel: "noopener noreferrer",
    "data-attachment": name },
    image ? h("img", { src: url, alt: name, loading: "lazy" }) : "📎 " + name + (a.size ? " (" + sizeText(a.size) + ")" : ""));
}
