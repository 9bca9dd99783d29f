// Composer drafts per ticket, kept in localStorage so a reload (or a crash) loses nothing; the
// key is "handoff.draft.<ticket id>". Storage that refuses (private mode, quota) is ignored.
const PREFIX = "handoff.draft.";

/** The draft of ticket `id`, "" when none. */
export function loadDraft(id) {
  try { return localStorage.getItem(PREFIX + id) || ""; } catch { return ""; }
}

/** Keep `text` as the draft of ticket `id` (an empty text removes it). */
export function saveDraft(id, text) {
  try {
    if (text) localStorage.setItem(PREFIX + id, text); else localStorage.removeItem(PREFIX + id);
  } catch { /* storage unavailable: the draft lives as long as the page */ }
}
