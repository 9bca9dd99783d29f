// Unit tests of @mention completion's text side (desk/mention_text.js, issue 16 item 2): which
// "@…" the caret is in, which colleagues it offers, and the text that names exactly one of them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { matchAgents, mentionFor, mentionQuery } from "../../../handoff/web/static/desk/mention_text.js";
import { shiftNotice } from "../../../handoff/web/static/desk/format.js";

const ANA = { id: 1, name: "Ana María", email: "ana@example.com" };
const BOB = { id: 2, name: "Bob Stone", email: "bob@example.com" };
const CARL1 = { id: 3, name: "Carl Lee", email: "carl1@example.com" };
const CARL2 = { id: 4, name: "Carl Lee", email: "carl2@example.com" };
const DEE = { id: 5, name: "Dee (night shift)", email: "dee@example.com" };
const ALL = [ANA, BOB, CARL1, CARL2, DEE];

test("mentionQuery: the @ the caret is in, not one inside a word or an email", () => {
  assert.deepEqual(mentionQuery("hi @bo", 6), { start: 3, query: "bo" });
  assert.deepEqual(mentionQuery("@", 1), { start: 0, query: "" });
  assert.deepEqual(mentionQuery("@Ana Ma", 7), { start: 0, query: "Ana Ma" });  // names have spaces
  assert.equal(mentionQuery("mail ana@ex", 11), null);
  assert.equal(mentionQuery("@Ana María said hi", 18), null);  // the mention is behind us
  assert.equal(mentionQuery("@bo\nx", 5), null);
  assert.equal(mentionQuery("no at sign", 5), null);
});

test("matchAgents: name starts first, then a word of the name, then the email; never me", () => {
  assert.deepEqual(matchAgents("", ALL, 1).map((a) => a.id), [2, 3, 4, 5]);
  assert.deepEqual(matchAgents("st", ALL, null).map((a) => a.id), [2]);  // "Stone"
  assert.deepEqual(matchAgents("ANA", ALL, 2).map((a) => a.id), [1]);
  assert.deepEqual(matchAgents("carl2", ALL, null).map((a) => a.id), [4]);  // by email
  assert.deepEqual(matchAgents("zed", ALL, null), []);
  assert.equal(matchAgents("", ALL, null, 2).length, 2);
});

test("mentionFor: the plain name, the quoted name, or the email when the name is shared", () => {
  assert.equal(mentionFor(ANA, ALL), "@Ana María ");
  assert.equal(mentionFor(DEE, ALL), '@"Dee (night shift)" ');
  assert.equal(mentionFor(CARL1, ALL), "@carl1@example.com ");
});

test("shiftNotice: a mention names who and the ticket, unless that ticket is shown", () => {
  const e = { kind: "mention", agent_id: 2, notification: { ticket_id: 7, actor: ANA, text: "@Bob look" } };
  assert.deepEqual(shiftNotice(e, BOB, null), { title: "Ana María mentioned you on ticket #7", body: "@Bob look", ticketId: 7 });
  assert.equal(shiftNotice(e, BOB, 7), null);
});
