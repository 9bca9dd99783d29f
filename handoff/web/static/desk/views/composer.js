// The ticket page's composer: a reply to the customer (with uploaded files) or an internal
// note. The mode shows on the composer, its label and its send button; after a note, and when
// the ticket changes hands, it returns to Reply. Only the assignee (or anyone on an unassigned
// ticket) may reply; others may add notes (handoff/desk/rules.py). Ctrl/⌘+Enter sends; the draft
// is kept per ticket across reloads (drafts.js); a send that fails keeps the text and says why.
// In a note, "@" offers colleagues to mention (mentions.js).
// "/code" offers canned responses (shortcuts.js); the AI bar drafts, polishes, translates (compose.js).
import { state, ticketEls } from "../state.js";
import { api, uploadFile } from "../api.js";
import { h, toast } from "../dom.js";
import { nameOf } from "../format.js";
import { loadDraft, saveDraft } from "../drafts.js";
import { appendMessage } from "./timeline.js";
import { attachMentions } from "../mentions.js";
import { cannedShortcuts } from "./shortcuts.js";
import { composeBar } from "./compose.js";

let setMode = () => {};
let canReply = true;

/** The composer <form> for `ticket` ({id, conversation_id}); POSTs /api/v1/tickets/{id}/messages. */
export function composerForm(ticket) {
  const text = h("textarea", { rows: 3, "data-field": "composer", placeholder: "Write a reply…", "aria-label": "Reply to the customer" });
  text.value = loadDraft(ticket.id);  // a reload or a re-render keeps the draft
  let internal = false;
  let uploads = [];
  const tabReply = h("button", { type: "button", class: "tab active", "data-action": "mode-reply", "aria-pressed": "true" }, "Reply");
  const tabNote = h("button", { type: "button", class: "tab", "data-action": "mode-note", "aria-pressed": "false" }, "Internal note");
  const modeLabel = h("span", { class: "mode-label", "data-field": "composer-mode" });
  const hint = h("p", { class: "composer-hint", "data-field": "composer-hint", hidden: true });
  const error = h("p", { class: "composer-error", "data-field": "composer-error", role: "alert", hidden: true });
  const fileInput = h("input", { type: "file", multiple: true, hidden: true, "data-field": "attach-input" });
  const attachButton = h("button", { type: "button", "data-action": "attach", title: "Attach files (10 MB each)",
    onclick: () => fileInput.click() }, "Attach files…");
  const send = h("button", { type: "submit", class: "primary", "data-action": "send" }, "Send reply");
  const chips = h("div", { class: "uploads", "data-field": "uploads" });
  const mentionList = attachMentions(text, () => internal);  // "@" completion while writing a note
  const shortcuts = cannedShortcuts(text, ticket.id, (value) => saveDraft(ticket.id, value));
  const compose = composeBar(ticket, (ticket.conversation || {}).language || ticket.language, text,
    (value) => { saveDraft(ticket.id, value); error.hidden = true; }, (why) => { error.textContent = why; error.hidden = false; });
  const composer = h("form", { class: "composer", "data-form": "composer", "data-mode": "reply", "data-ticket": ticket.id },
    h("div", { class: "tabs" }, tabReply, tabNote, modeLabel), hint, text, mentionList, shortcuts, chips, error, compose.bar,
    h("div", { class: "composer-actions" }, fileInput, attachButton, send));
  function showUploads() {
    chips.replaceChildren(...uploads.map((u) => h("span", { class: "upload-chip", "data-upload": u.id },
      u.filename, h("button", { type: "button", class: "icon", "aria-label": "Remove " + u.filename,
        onclick: () => { uploads = uploads.filter((x) => x !== u); showUploads(); } }, "×"))));
  }
  fileInput.addEventListener("change", async () => {
    for (const file of Array.from(fileInput.files || [])) {
      const uploaded = await uploadFile(file);
      if (uploaded) { uploads.push(uploaded); showUploads(); }
    }
    fileInput.value = "";
  });
  function mode(note) {
    internal = note || !canReply;
    tabReply.classList.toggle("active", !internal); tabNote.classList.toggle("active", internal);
    tabReply.setAttribute("aria-pressed", String(!internal)); tabNote.setAttribute("aria-pressed", String(internal));
    tabReply.disabled = !canReply;
    composer.classList.toggle("note", internal);
    composer.dataset.mode = internal ? "note" : "reply";
    modeLabel.textContent = internal ? "Internal note: the customer will not see this" : "Reply: the customer will see this";
    send.textContent = internal ? "Add note" : "Send reply";
    send.classList.toggle("note", internal);
    attachButton.disabled = internal; // notes carry no files
    chips.hidden = internal;
    text.placeholder = internal ? "Write an internal note (the customer never sees it; @ mentions a colleague)…" : "Write a reply…";
    text.setAttribute("aria-label", internal ? "Internal note" : "Reply to the customer");
    compose.show(!internal);  // AI compose writes for the customer: Reply mode only
  }
  setMode = mode;
  tabReply.addEventListener("click", () => mode(false));
  tabNote.addEventListener("click", () => mode(true));
  text.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) composer.requestSubmit(); });
  text.addEventListener("input", () => {
    saveDraft(ticket.id, text.value);
    const now = Date.now();
    if (!internal && now - state.typingSent > 2500) {
      state.typingSent = now;
      api("POST", "/api/v1/conversations/" + ticket.conversation_id + "/typing", { typing: true }).catch(() => {});
    }
  });
  composer.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = text.value.trim();
    const files = internal ? [] : uploads;
    if (!value && !files.length) return;
    const body = { text: value, internal: internal };
    if (files.length) body.attachments = files.map((u) => u.id);
    send.disabled = true;
    // The draft goes now: a re-render while the request runs (a live event) must not bring it back.
    saveDraft(ticket.id, "");
    let res;
    try {
      res = await api("POST", "/api/v1/tickets/" + ticket.id + "/messages", body);
    } catch {
      res = { ok: false, data: { error: "the server could not be reached" } };
    } finally {
      send.disabled = false;
    }
    if (!res.ok) {
      saveDraft(ticket.id, text.value);
      const why = (internal ? "Note not added: " : "Not sent: ") + (res.data.error || "failed") + ". Your text is kept.";
      error.textContent = why; error.hidden = false;
      toast(why, "error");
      return;
    }
    error.hidden = true;
    text.value = "";
    const shown = document.querySelector("[data-field=composer]");  // the page may have been re-rendered
    if (shown && shown !== text && shown.value.trim() === value) shown.value = "";
    if (files.length) { uploads = []; showUploads(); }
    state.typingSent = 0;
    const message = res.data.message || res.data;
    if (message && message.id) appendMessage(message);
    mode(false);  // a note is a one-off: the next message is a reply again
  });
  ticketEls.composer = composer;
  ticketEls.hint = hint;
  canReply = true;
  mode(false);
  return composer;
}

/**
 * Show what the agent may write ({reply, note} from format.permissionsFor) with the ticket's
 * `assignee`; `handsChanged` (a transfer, a claim) puts the composer back on Reply.
 */
export function showPermissions(may, assignee, handsChanged) {
  const was = canReply;
  canReply = may.reply;
  if (ticketEls.hint) {
    ticketEls.hint.hidden = may.reply || !may.note;
    ticketEls.hint.textContent = assignee ? nameOf(assignee) + " is answering this customer: you can add internal notes." : "";
  }
  if (handsChanged || was !== canReply) setMode(false);
}
