// Unit tests of the desk's shift decisions (desk/format.js, issue 15): list rows' last line and
// who answers, the permission mirror of handoff/desk/rules.py, the title count and what to notify.
import { test } from "node:test";
import assert from "node:assert/strict";
import { contactName, lastLine, permissionsFor, shiftNotice, statusAfterCustomerMessage, titleWith, whoAnswers,
  withCount } from "../../../handoff/web/static/desk/format.js";

const ANA = { id: 1, name: "Ana", email: "ana@example.com" };
const BOB = { id: 2, name: "Bob", email: "bob@example.com" };

test("contactName: falls back to the channel id before Visitor", () => {
  assert.equal(contactName({ contact: { name: null, email: null, external_id: "+34600000000" } }), "+34600000000");
});

test("lastLine: who wrote the last message and its text", () => {
  const row = { last_message: { text: "Hi", author_kind: "agent" }, last_responder: { kind: "agent", agent: BOB } };
  assert.deepEqual(lastLine(row, ANA), { who: "Bob", text: "Hi" });
  assert.deepEqual(lastLine(row, BOB), { who: "You", text: "Hi" });
  assert.deepEqual(lastLine({ last_message: { text: "echo", author_kind: "bot" } }, ANA), { who: "AI", text: "echo" });
  assert.deepEqual(lastLine({ last_message: { text: "?", author_kind: "customer" } }, ANA), { who: "Customer", text: "?" });
  assert.equal(lastLine({ last_message: null }, ANA), null);
});

test("whoAnswers: the AI, the assignee (You), the queue, nobody", () => {
  assert.equal(whoAnswers({ state: "bot" }, ANA), "AI");
  assert.equal(whoAnswers({ state: "human", assignee: BOB }, ANA), "Bob");
  assert.equal(whoAnswers({ state: "human", assignee: ANA }, ANA), "You");
  assert.equal(whoAnswers({ state: "human", assignee: null }, ANA), "Queue");
  assert.equal(whoAnswers({ state: "ended" }, ANA), "—");
});

test("permissionsFor mirrors the API's rules", () => {
  const all = { reply: true, note: true, claim: false, transfer: true, allow_ai: true, close: true, confirm: false };
  assert.deepEqual(permissionsFor({ status: "on_you", assignee: ANA }, ANA), all);
  assert.deepEqual(permissionsFor({ status: "on_you", assignee: ANA }, BOB), { ...all, reply: false, confirm: true });
  assert.deepEqual(permissionsFor({ status: "open", assignee: null }, BOB), { ...all, claim: true });
  const closed = permissionsFor({ status: "closed", assignee: ANA }, ANA);
  assert.ok(Object.values(closed).every((v) => v === false));
});

test("titleWith and withCount show a count only when there is one", () => {
  assert.equal(titleWith(3), "(3) handoff desk");
  assert.equal(titleWith(0), "handoff desk");
  assert.equal(withCount("My tickets", 3), "My tickets (3)");
  assert.equal(withCount("My tickets", 0), "My tickets");
});

test("shiftNotice: my ticket's message, a transfer to me, a new unassigned ticket; nothing else", () => {
  const message = { kind: "ticket.message", ticket_id: 7, assignee_id: 1, contact_name: "Dana", text: "hello?" };
  assert.deepEqual(shiftNotice(message, ANA, null), { title: "Dana wrote on your ticket #7", body: "hello?", ticketId: 7 });
  assert.equal(shiftNotice(message, ANA, 7), null);  // the ticket is on screen
  assert.equal(shiftNotice({ ...message, assignee_id: null }, BOB, null).title, "Dana wrote on unassigned ticket #7");
  const moved = { kind: "ticket.assigned", ticket_id: 7, agent_id: 2, by: ANA };
  assert.equal(shiftNotice(moved, BOB, null).title, "Ana transferred ticket #7 to you");
  assert.equal(shiftNotice(moved, ANA, null), null);
  assert.equal(shiftNotice({ ...moved, by: null }, BOB, null).title, "Ticket #7 was routed to you");  // routing
  const created = { kind: "ticket.created", ticket: { id: 9, subject: "Refund", assignee: null } };
  assert.deepEqual(shiftNotice(created, ANA, null), { title: "New unassigned ticket #9", body: "Refund", ticketId: 9 });
  assert.equal(shiftNotice({ kind: "ticket.created", ticket: { id: 9, assignee: ANA } }, BOB, null), null);
  assert.equal(shiftNotice({ kind: "message.created" }, ANA, null), null);
});

test("statusAfterCustomerMessage: waiting on the customer becomes on you", () => {
  assert.equal(statusAfterCustomerMessage("on_customer"), "on_you");
  assert.equal(statusAfterCustomerMessage("open"), "open");
});
