// Unit tests of the desk's pure formatting and rendering decisions (desk/format.js), run with
// Node's test runner by tests/web/test_js.py with TZ=UTC and LC_ALL=en_US.UTF-8.
import { test } from "node:test";
import assert from "node:assert/strict";
import { attachmentUrl, contactName, eventLabel, isImage, list, messageKind, nameOf, senderName, sizeText,
  stateLabel, timelineItems, when } from "../../../handoff/web/static/desk/format.js";

const NOW = new Date("2026-03-04T18:00:00Z");

test("when: the time of day for today, date and time otherwise, in the browser's zone", () => {
  assert.equal(when("2026-03-04T14:05:00Z", NOW), "02:05 PM");
  assert.equal(when("2026-03-03T23:59:00Z", NOW), "3/3/2026, 11:59:00 PM");
  assert.equal(when(Date.parse("2026-03-04T09:30:00Z") / 1000, NOW), "09:30 AM");  // epoch seconds
  assert.equal(when(null, NOW), "");
  assert.equal(when("not a time", NOW), "");
});

test("stateLabel: conversation states and ticket statuses, unknown ones as they are", () => {
  assert.equal(stateLabel("bot"), "AI");
  assert.equal(stateLabel("human"), "Live chat");
  assert.equal(stateLabel("on_you"), "On you");
  assert.equal(stateLabel("on_customer"), "Waiting on customer");
  assert.equal(stateLabel("snoozed"), "snoozed");
});

test("nameOf: an agent's name, else email, else #id; a string as it is", () => {
  assert.equal(nameOf({ id: 3, name: "Ana", email: "ana@example.com" }), "Ana");
  assert.equal(nameOf({ id: 3, email: "ana@example.com" }), "ana@example.com");
  assert.equal(nameOf({ id: 3 }), "#3");
  assert.equal(nameOf("Ben"), "Ben");
  assert.equal(nameOf(null), "");
});

test("contactName: the contact's name or email, a ticket row's contact fields, else Visitor", () => {
  assert.equal(contactName({ contact: { name: "Dana", email: "d@example.com" } }), "Dana");
  assert.equal(contactName({ contact: { email: "d@example.com" } }), "d@example.com");
  assert.equal(contactName({ contact_name: "Eve" }), "Eve");
  assert.equal(contactName({ contact_external_id: "whatsapp:+34600000000" }), "whatsapp:+34600000000");
  assert.equal(contactName({ contact: {} }), "Visitor");
  assert.equal(contactName(null), "Visitor");
});

test("list: the array of an API answer", () => {
  assert.deepEqual(list([1, 2], "tickets"), [1, 2]);
  assert.deepEqual(list({ tickets: [3] }, "tickets"), [3]);
  assert.deepEqual(list({ items: [4] }, "tickets"), [4]);
  assert.deepEqual(list({ error: "no" }, "tickets"), []);
  assert.deepEqual(list(null, "tickets"), []);
});

test("sizeText: bytes, KB rounded, MB with one decimal", () => {
  assert.equal(sizeText(1023), "1023 B");
  assert.equal(sizeText(1536), "2 KB");
  assert.equal(sizeText(3.4 * 1024 * 1024), "3.4 MB");
});

test("messageKind: separators, notices and messages", () => {
  assert.equal(messageKind({ direction: "activity", text: "Live Chat" }), "separator");
  assert.equal(messageKind({ kind: "separator" }), "separator");
  assert.equal(messageKind({ notice: "waiting", author_kind: "bot" }), "notice");
  assert.equal(messageKind({ direction: "outgoing" }), "notice");  // no author: the system's
  assert.equal(messageKind({ direction: "incoming", text: "hi" }), "message");
  assert.equal(messageKind({ author_kind: "agent", text: "hello" }), "message");
});

test("senderName: customer, AI, agent by name or id, the provider's app, else Agent", () => {
  const byId = (id) => (id === 7 ? "Ana" : "An agent");
  assert.equal(senderName({ direction: "incoming" }, "Dana", byId), "Dana");
  assert.equal(senderName({ author_kind: "bot" }, "Dana", byId), "AI assistant");
  assert.equal(senderName({ author_kind: "agent", agent: { id: 7, name: "Ana M." } }, "Dana", byId), "Ana M.");
  assert.equal(senderName({ author_kind: "agent", agent: { id: 7 } }, "Dana", byId), "Ana");
  assert.equal(senderName({ author_kind: "agent", origin: "instagram_app" }, "Dana", byId), "Replied from the Instagram app");
  assert.equal(senderName({ author_kind: "agent" }, "Dana", byId), "Agent");
});

test("eventLabel: the sentence for each timeline event", () => {
  assert.equal(eventLabel({ kind: "takeover" }, "Ana"), "Ana took over");
  assert.equal(eventLabel({ kind: "transferred", data: { to_agent: { name: "Ben" } } }, "Ana"),
    "Ana transferred the ticket to Ben");
  assert.equal(eventLabel({ kind: "transferred", data: {} }, "Ana"), "Ana transferred the ticket to a colleague");
  assert.equal(eventLabel({ kind: "escalated", data: { reason: "asked for a person" } }, "The system"),
    "Escalated to a person: asked for a person");
  assert.equal(eventLabel({ kind: "escalated" }, "The system"), "Escalated to a person");
  assert.equal(eventLabel({ kind: "ended", data: { reason: "inactivity" } }, "The system"), "The conversation ended (inactivity)");
  assert.equal(eventLabel({ kind: "bot_reply_dropped" }, "The system"), "A bot reply was dropped: the conversation changed owner");
  assert.equal(eventLabel({ kind: "sla_breached" }, "The system"), "sla breached");
});

test("timelineItems: messages and events by time, messages of one instant by id, kindless events left out", () => {
  const items = timelineItems({
    messages: [{ id: 5, created_at: "2026-03-04T10:00:02Z" }, { id: 4, created_at: "2026-03-04T10:00:02Z" },
      { id: 1, created_at: "2026-03-04T10:00:00Z" }],
    events: { events: [{ kind: "takeover", created_at: "2026-03-04T10:00:01Z" }, { created_at: "2026-03-04T10:00:00Z" }] },
  });
  assert.deepEqual(items.map((i) => (i.m ? "m" + i.m.id : i.e.kind)), ["m1", "takeover", "m4", "m5"]);
});

test("attachmentUrl: our files by path, other http(s) as they are, anything else refused", () => {
  const page = "https://desk.example.com/desk";
  assert.equal(attachmentUrl({ url: "https://public.example.com/media/ab/cat.png" }, page), "/media/ab/cat.png");
  assert.equal(attachmentUrl({ url: "/widget/files/9" }, page), "/widget/files/9");
  assert.equal(attachmentUrl({ url: "https://cdn.example.net/a.pdf" }, page), "https://cdn.example.net/a.pdf");
  assert.equal(attachmentUrl({ url: "javascript:alert(1)" }, page), null);
  assert.equal(attachmentUrl({ url: "data:text/html,<b>x</b>" }, page), null);
  assert.equal(attachmentUrl({ url: "http://[bad" }, page), null);
});

test("isImage: only the image types drawn as thumbnails", () => {
  assert.equal(isImage({ content_type: "image/png" }), true);
  assert.equal(isImage({ content_type: "image/webp" }), true);
  assert.equal(isImage({ content_type: "image/svg+xml" }), false);
  assert.equal(isImage({}), false);
});
