// @mentions in internal notes, the text side (no DOM, unit-tested in tests/web/js/mentions.test.js):
// which "@…" the caret is in, which agents it may mean, and what to insert for one. The server
// reads the same forms (handoff/mentions.py): @"Full Name", @email, or @Name (the longest agent name).

/**
 * The mention being typed just before `caret` in `text`: {start (the index of its "@"), query
 * (what follows the "@")}, or null when the caret is not in one ("@" inside a word or an email
 * address is not a mention; a query ends at a line break or a second space).
 */
export function mentionQuery(text, caret) {
  const before = text.slice(0, caret);
  const at = before.lastIndexOf("@");
  if (at < 0) return null;
  const prev = at > 0 ? before[at - 1] : "";
  if (prev && /[\p{L}\p{N}_.+@-]/u.test(prev)) return null;
  const query = before.slice(at + 1);
  if (/[\n"@]/.test(query) || /\s\S*\s/.test(query) || query.length > 60) return null;
  return { start: at, query };
}

function fold(s) { return (s || "").normalize("NFC").toLocaleLowerCase(); }

/**
 * The agents (`{id, name, email}`) `query` may mean, best first: names that start with it, then
 * names with a word that starts with it, then emails that start with it; `meId` left out; at most `max`.
 */
export function matchAgents(query, agents, meId, max = 8) {
  const q = fold(query.trim());
  const ranked = [];
  for (const a of agents || []) {
    if (a.id === meId) continue;
    const name = fold(a.name);
    let rank = -1;
    if (name.startsWith(q)) rank = 0;
    else if (name.split(/\s+/).some((w) => w.startsWith(q))) rank = 1;
    else if (fold(a.email).startsWith(q)) rank = 2;
    if (rank >= 0) ranked.push([rank, name, a]);
  }
  ranked.sort((x, y) => x[0] - y[0] || x[1].localeCompare(y[1]));
  return ranked.slice(0, max).map((r) => r[2]);
}

/**
 * What to insert for `agent` so the server names exactly them: "@Name " when the name is theirs
 * alone and only letters, digits and spaces; '@"Name" ' when it has other characters; "@email "
 * when another agent has the same name.
 */
export function mentionFor(agent, agents) {
  const same = (agents || []).filter((a) => a.id !== agent.id && fold(a.name).trim() === fold(agent.name).trim());
  if (same.length || !agent.name.trim()) return "@" + agent.email + " ";
  return /^[\p{L}\p{N}_ ]+$/u.test(agent.name) ? "@" + agent.name.trim() + " " : '@"' + agent.name + '" ';
}
