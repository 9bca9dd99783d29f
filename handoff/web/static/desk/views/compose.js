// AI compose in the composer (POST /api/v1/tickets/{id}/compose): "Draft reply" writes a reply
// from the conversation, "Polish" and "Translate" rewrite the agent's text (Translate: into the
// customer's language). The result replaces the text for the agent to review; nothing is sent,
// and "Undo" puts the earlier text back. The bar shows only when the ticket's
// `permissions.compose` says a model is configured, and only in Reply mode.
import { api } from "../api.js";
import { h, toast } from "../dom.js";

/** The customer's language's name in English ("es" → "Spanish"), or the code itself. */
function languageName(code) {
  try { return new Intl.DisplayNames(["en"], { type: "language" }).of(code) || code; } catch { return code; }
}

/**
 * The compose bar for `ticket` ({id, permissions}) working on `text` (the textarea) with the
 * customer's `language` (null while unknown); `changed(value)` after the text is replaced,
 * `showError(message)` for a failure. → {bar, show(replyMode)}.
 */
export function composeBar(ticket, language, text, changed, showError) {
  const available = !!(ticket.permissions && ticket.permissions.compose);
  let before = null;
  const status = h("span", { class: "compose-status muted", "data-field": "compose-status", role: "status" });
  const undo = h("button", { type: "button", class: "link", "data-action": "compose-undo", hidden: true,
    onclick: () => { text.value = before; before = null; undo.hidden = true; status.textContent = ""; changed(text.value); } }, "Undo");
  const buttons = [
    h("button", { type: "button", "data-action": "compose-draft", title: "Write a reply from the conversation (you review it before sending)",
      onclick: () => run("draft") }, "Draft reply"),
    h("button", { type: "button", "data-action": "compose-polish", title: "Fix spelling and tone of your text",
      onclick: () => run("polish") }, "Polish"),
    language ? h("button", { type: "button", "data-action": "compose-translate", title: "Translate your text into " + languageName(language),
      onclick: () => run("translate") }, "Translate to " + languageName(language)) : null,
  ].filter(Boolean);
  const bar = h("div", { class: "compose-bar", "data-field": "compose", hidden: !available },
    h("span", { class: "muted" }, "AI:"), buttons, status, undo);

  async function run(mode) {
    const value = text.value.trim();
    if (mode !== "draft" && !value) { showError("Write something first: " + mode + " works on your text."); return; }
    for (const b of buttons) b.disabled = true;
    status.textContent = "Writing…";
    let res;
    try {
      res = await api("POST", "/api/v1/tickets/" + ticket.id + "/compose", mode === "draft" ? { mode } : { mode, text: value });
    } catch {
      res = { ok: false, data: { error: "the server could not be reached" } };
    } finally {
      for (const b of buttons) b.disabled = false;
    }
    if (!res.ok) {
      status.textContent = "";
      const why = "AI compose failed: " + (res.data.error || "error") + ". Your text is kept.";
      showError(why); toast(why, "error");
      return;
    }
    before = text.value;
    text.value = res.data.text;
    undo.hidden = false;
    status.textContent = "Review before sending.";
    changed(text.value);
    text.focus();
  }
  return { bar, show: (replyMode) => { bar.hidden = !available || !replyMode; } };
}
