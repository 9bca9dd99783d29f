// Canned responses in the composer: typing "/" at the start of the text offers the saved replies
// whose short code starts with what follows ("/ship" → /shipping); ↑/↓ choose, Enter or Tab (or a
// click) puts the reply in place of "/ship", filled in for this ticket's customer by the server
// (GET /api/v1/canned_responses?ticket_id=…, `rendered`); Escape closes the list. Nothing is sent:
// the agent reviews the text and sends it as any reply.
import { api } from "../api.js";
import { h } from "../dom.js";
import { list } from "../format.js";

const TYPED = /^\s*\/([\w.-]*)$/u;  // the text so far is one "/code" being typed

/**
 * Offer canned responses in `text` (the composer's textarea) of ticket `ticketId`; `changed(value)`
 * is called after an expansion. → the list element, to place under the textarea.
 */
export function cannedShortcuts(text, ticketId, changed) {
  let all = null;  // loaded on the first "/", once per ticket page
  let shown = [];
  let active = 0;
  const box = h("ul", { class: "shortcuts", role: "listbox", "data-field": "shortcuts", "aria-label": "Canned responses", hidden: true });

  function close() { box.hidden = true; shown = []; text.removeAttribute("aria-activedescendant"); }
  function pick(item) {
    text.value = item.rendered || item.content;
    close();
    text.focus();
    changed(text.value);
  }
  function draw() {
    box.replaceChildren(...shown.map((item, i) => h("li", {
      role: "option", id: "shortcut-" + item.id, "data-short-code": item.short_code, "aria-selected": String(i === active),
      class: i === active ? "active" : "", onmousedown: (ev) => { ev.preventDefault(); pick(item); },
    }, h("strong", {}, "/" + item.short_code), " ", h("span", { class: "muted" }, (item.rendered || item.content).slice(0, 90)))));
    box.hidden = !shown.length;
    if (shown.length) text.setAttribute("aria-activedescendant", "shortcut-" + shown[active].id);
  }
  text.addEventListener("input", async () => {
    const m = TYPED.exec(text.value);
    if (!m) { close(); return; }
    if (all === null) {
      all = [];
      const res = await api("GET", "/api/v1/canned_responses?ticket_id=" + ticketId);
      all = res.ok ? list(res.data, "canned_responses") : [];
    }
    const again = TYPED.exec(text.value);  // the agent may have typed on while the list loaded
    if (!again) { close(); return; }
    const prefix = again[1].toLowerCase();
    shown = all.filter((c) => c.short_code.startsWith(prefix)).slice(0, 8);
    active = 0;
    draw();
  });
  text.addEventListener("keydown", (ev) => {
    if (box.hidden || !shown.length) return;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      active = (active + (ev.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
      draw();
    } else if ((ev.key === "Enter" && !ev.ctrlKey && !ev.metaKey) || ev.key === "Tab") {
      ev.preventDefault();
      pick(shown[active]);
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      close();
    }
  });
  text.addEventListener("blur", () => setTimeout(() => { if (document.activeElement !== text) close(); }, 150));
  return box;
}
