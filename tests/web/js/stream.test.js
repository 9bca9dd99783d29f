// Unit tests of the desk stream's resume decisions (desk/stream.js), run with Node's test
// runner by tests/web/test_js.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { advance, streamUrl } from "../../../handoff/web/static/desk/stream.js";

test("streamUrl: ws for http, wss for https, ?after= only when a seq is known", () => {
  assert.equal(streamUrl("http://desk.example.com/desk#tickets/mine", null), "ws://desk.example.com/api/v1/stream");
  assert.equal(streamUrl("https://desk.example.com/desk", 42), "wss://desk.example.com/api/v1/stream?after=42");
  assert.equal(streamUrl("https://desk.example.com/desk", 0), "wss://desk.example.com/api/v1/stream?after=0");
});

test("advance: stream.ready starts the count, a resumed stream keeps its own", () => {
  assert.deepEqual(advance(null, { kind: "stream.ready", seq: 7 }), { seq: 7, reload: false });
  assert.deepEqual(advance(5, { kind: "stream.ready", seq: 9 }), { seq: 5, reload: false });  // 6..9 are being replayed
});

test("advance: logged events move the count on, never back; unlogged ones leave it", () => {
  assert.deepEqual(advance(5, { kind: "message.created", seq: 6 }), { seq: 6, reload: false });
  assert.deepEqual(advance(6, { kind: "message.updated", seq: 4 }), { seq: 6, reload: false });
  assert.deepEqual(advance(6, { kind: "typing", typing: true }), { seq: 6, reload: false });
});

test("advance: stream.resync asks for a reload and goes on from the server's seq", () => {
  assert.deepEqual(advance(3, { kind: "stream.resync", seq: 900 }), { seq: 900, reload: true });
  assert.deepEqual(advance(3, { kind: "stream.resync" }), { seq: 3, reload: true });
});
