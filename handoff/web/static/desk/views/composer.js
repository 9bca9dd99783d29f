// The ticket page's composer: a reply to the customer (with uploaded files) or an internal
// note, Ctrl/⌘+Enter sends, the draft survives a re-render, typing is signalled to the customer.
import { state, ticketEls } from "../state.js";
import { api, uploadFile } from "../api.js";
import { h, toast } from "../dom.js";
import { appendMessage } from "./timeline.js";

/** The composer <form> for `ticket` ({id, conversation_id}); POSTs /api/v1/tickets/{id}/messages. */
export function composerForm(ticket) {
  const text = h("textarea", { rows: 3, "data-field": "composer", placeholder: "Write a reply…", "aria-label": "Message" });
  text.value = state.drafts.get(ticket.id) || "";  // a re-render (reconnect, catch-up) keeps the draft
  let internal = false;
  let uploads = [];
  const tabReply = h("button", { type: "button", class: "tab active", "data-action": "mode-reply" }, "Reply");
  const tabNote = h("button", { type: "button", class: "tab", "data-action": "mode-note" }, "Internal note");
  const fileInput = h("input", { type: "file", multiple: true, hidden: true, "data-field": "attach-input" });
  const attachButton = h("button", { type: "button", "data-action": "attach", title: "Attach files (10 MB each)",
    onclick: () => fileInput.click() }, "Attach files…");
  const chips = h("div", { class: "uploads", "data-field": "uploads" });
  const composer = h("form", { class: "composer", "data-form": "composer" },
    h("div", { class: "tabs" }, tabReply, tabNote), text, chips,
    h("div", { class: "composer-actions" }, fileInput, attachButton,
      h("button", { type: "submit", class: "primary", "data-action": "send" }, "Send")));
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
    internal = note;
    tabReply.classList.toggle("active", !note); tabNote.classList.toggle("active", note);
    composer.classList.toggle("note", note);
    attachButton.disabled = note; // notes carry no files
    chips.hidden = note;
    text.placeholder = note ? "Write an internal note (the customer never sees it)…" : "Write a reply…";
  }
  tabReply.addEventListener("click", () => mode(false));
  tabNote.addEventListener("click", () => mode(true));
  text.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) composer.requestSubmit(); });
  text.addEventListener("input", () => {
    state.drafts.set(ticket.id, text.value);
    const now = Date.now();
    if (!internal && now - state.typingSent > 2500) {
      state.typingSent = now;
      api("POST", "/api/v1/conversations/" + ticket.conversation_id + "/typing", { typing: true });
    }
  });
  composer.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = text.value.trim();
    const files = internal ? [] : uploads;
    if (!value && !files.length) return;
    const body = { text: value, internal: internal };
    if (files.length) body.attachments = files.map((u) => u.id);
    const res = await api("POST", "/api/v1/tickets/" + ticket.id + "/messages", body);
    if (!res.ok) { toast(res.data.error || "Not sent", "error"); return; }
    text.value = "";
    state.drafts.delete(ticket.id);
    if (files.length) { uploads = []; showUploads(); }
    state.typingSent = 0;
    const message = res.data.message || res.data;
    if (message && message.id) appendMessage(message);
  });
  ticketEls.composer = composer;
  return composer;
}
