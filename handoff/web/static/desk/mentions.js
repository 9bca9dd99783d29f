// @mention completion in the composer while it writes an internal note: typing "@" opens a list
// of colleagues (GET /api/v1/agents, loaded once) that narrows as the agent types; ↑/↓ move,
// Enter or Tab picks, Escape closes, a click picks. The text inserted is what the server reads
// as that one agent (mention_text.js). Replies to the customer get no completion.
import { state } from "./state.js";
import { loadAgents } from "./api.js";
import { h } from "./dom.js";
import { matchAgents, mentionFor, mentionQuery } from "./mention_text.js";

let seq = 0;

/**
 * Attach completion to the composer's `textarea`; `isNote()` says whether it writes a note now.
 * Returns the list element (placed after the textarea by the caller).
 */
export function attachMentions(textarea, isNote) {
  const id = "mention-list-" + (++seq);
  const list = h("ul", { class: "mention-list", role: "listbox", id, "aria-label": "Mention a colleague",
    "data-field": "mention-list", hidden: true });
  textarea.setAttribute("aria-autocomplete", "list");
  textarea.setAttribute("aria-controls", id);
  let options = [];
  let active = 0;
  let found = null;
  let picking = false;

  function close() {
    list.hidden = true; options = []; found = null;
    textarea.removeAttribute("aria-activedescendant");
  }
  function highlight(i) {
    active = (i + options.length) % options.length;
    [...list.children].forEach((li, n) => li.setAttribute("aria-selected", String(n === active)));
    textarea.setAttribute("aria-activedescendant", id + "-" + active);
  }
  function pick(agent) {
    const insert = mentionFor(agent, state.agents);
    const caret = textarea.selectionStart;
    textarea.value = textarea.value.slice(0, found.start) + insert + textarea.value.slice(caret);
    const at = found.start + insert.length;
    textarea.setSelectionRange(at, at);
    close();
    picking = true;  // the draft keeps it; the list stays closed
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    picking = false;
    textarea.focus();
  }
  let latest = 0;  // updates finish out of order (the agents' list loads once): only the last one counts
  async function update() {
    const mine = ++latest;
    const query = isNote() ? mentionQuery(textarea.value, textarea.selectionStart) : null;
    if (!query) { close(); return; }
    const agents = await loadAgents();
    if (mine !== latest) return;
    options = matchAgents(query.query, agents, state.me && state.me.id);
    if (!options.length) { close(); return; }
    found = query;
    list.replaceChildren(...options.map((a, n) => h("li", { role: "option", id: id + "-" + n, "data-agent": a.id,
      "aria-selected": "false", onmousedown: (ev) => { ev.preventDefault(); pick(a); } },
    h("span", { class: "mention-name" }, a.name), " ", h("span", { class: "muted" }, a.email))));
    list.hidden = false;
    highlight(0);
  }
  textarea.addEventListener("input", () => { if (!picking) update(); });
  textarea.addEventListener("click", update);
  // Focus back within 100 ms (a click on the Note tab, then typing on) keeps a list opened meanwhile.
  textarea.addEventListener("blur", () => setTimeout(() => { if (document.activeElement !== textarea) close(); }, 100));
  textarea.addEventListener("keydown", (ev) => {
    if (list.hidden || !options.length) return;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") { ev.preventDefault(); highlight(active + (ev.key === "ArrowDown" ? 1 : -1)); }
    else if ((ev.key === "Enter" && !ev.ctrlKey && !ev.metaKey) || ev.key === "Tab") { ev.preventDefault(); ev.stopImmediatePropagation(); pick(options[active]); }
    else if (ev.key === "Escape") { ev.preventDefault(); close(); }
  });
  return list;
}
