// The desk's DOM helpers: h() builds elements, and every piece of server data goes in as
// text through it (never innerHTML); badges and toasts are built on it.
import { stateLabel } from "./format.js";

/**
 * h("a", {href: "#x", class: "c", onclick: fn, hidden: true}, "text", child, [more]) → Element.
 * Attributes that are null, undefined or false are left out, true gives an empty attribute,
 * "on…" adds a listener; children are Nodes or text, arrays are flattened, null/false skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A badge span; `kind` (default: the text) is its extra class. */
export function badge(text, kind) { return h("span", { class: "badge " + (kind || text) }, text); }

/** The badge of a conversation state or ticket status. */
export function stateBadge(value) { return badge(stateLabel(value), value); }

/** Show `text` for 8 s in the toast area; `kind` is "error", "warn conflict"…; `action` an element. */
export function toast(text, kind, action) {
  const el = h("div", { class: "toast " + (kind || "") }, h("span", {}, text), action || null);
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), 8000);
}
