// Unit tests of the desk's label and responder decisions (desk/labeling.js, issue 16).
import { test } from "node:test";
import assert from "node:assert/strict";
import { filterParams, labelChangeText, lastReplyBy, luminance, textOn, toggled } from "../../../handoff/web/static/desk/labeling.js";

const ANA = { id: 1, name: "Ana", email: "ana@example.com" };

test("textOn: dark text on light colours, white on dark ones", () => {
  assert.equal(textOn("#ffffff"), "#1f2328");
  assert.equal(textOn("#ffe066"), "#1f2328");
  assert.equal(textOn("#000000"), "#ffffff");
  assert.equal(textOn("#1f3a93"), "#ffffff");
  assert.equal(luminance("red"), 0);
});

test("lastReplyBy: the AI, you, a colleague, an unknown person or nobody yet", () => {
  assert.equal(lastReplyBy({ last_responder: { kind: "bot", agent: null } }, ANA), "AI");
  assert.equal(lastReplyBy({ last_responder: { kind: "agent", agent: ANA } }, ANA), "You");
  assert.equal(lastReplyBy({ last_responder: { kind: "agent", agent: { id: 2, name: "Bob" } } }, ANA), "Bob");
  assert.equal(lastReplyBy({ last_responder: { kind: "agent", agent: null } }, ANA), "Agent");
  assert.equal(lastReplyBy({ last_responder: null }, ANA), "");
});

test("toggled: adds a name once and removes it ignoring case", () => {
  assert.deepEqual(toggled(["refund"], "VIP", true), ["refund", "VIP"]);
  assert.deepEqual(toggled(["refund", "VIP"], "vip", false), ["refund"]);
  assert.deepEqual(toggled(["Refund"], "refund", true), ["refund"]);
});

test("filterParams: only the filters that have a value", () => {
  assert.deepEqual(filterParams({ label: "refund", agent_type: "", responded_by: null }), { label: "refund" });
  assert.deepEqual(filterParams(undefined), {});
});

test("labelChangeText: what was added and removed", () => {
  assert.equal(labelChangeText({ added: ["refund", "vip"], removed: [] }), "labelled it refund, vip");
  assert.equal(labelChangeText({ added: ["vip"], removed: ["late"] }), "labelled it vip and removed the label late");
  assert.equal(labelChangeText({ added: [], removed: ["a", "b"] }), "removed the labels a, b");
});
