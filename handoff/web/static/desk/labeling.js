// Pure decisions about labels and responders (issue 16): no DOM, no network, so Node's test runner
// can check them (tests/web/js/labeling.test.js). Shapes are those of the REST API (/api/v1).

/** The relative luminance (WCAG 2) of a colour written #rrggbb; 0 for anything else. */
export function luminance(hex) {
  if (!/^#[0-9a-f]{6}$/i.test(hex || "")) return 0;
  const channel = (i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
}

/** The text colour that reads best on a label's colour: near-black or white (the higher contrast). */
export function textOn(hex) {
  const l = luminance(hex);
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#1f2328" : "#ffffff";
}

/**
 * Who answered the customer last, as a list row says it: "AI", "You" (`me`), the agent's name,
 * "Agent" when the person is not known (a reply from the provider's own app), or "" before any answer.
 */
export function lastReplyBy(row, me) {
  const r = row && row.last_responder;
  if (!r) return "";
  if (r.kind === "bot") return "AI";
  if (!r.agent) return "Agent";
  return me && r.agent.id === me.id ? "You" : (r.agent.name || r.agent.email || "Agent");
}

/** The names of a conversation's labels after ticking (`on` true) or clearing one, by name ignoring case. */
export function toggled(names, name, on) {
  const key = name.toLowerCase();
  const rest = names.filter((n) => n.toLowerCase() !== key);
  return on ? rest.concat([name]) : rest;
}

/** The query parameters of a list's filters: only those with a value ({label: "refund", agent_type: ""} → {label: "refund"}). */
export function filterParams(filters) {
  return Object.fromEntries(Object.entries(filters || {}).filter(([, v]) => v !== "" && v != null));
}

/** A `labels_changed` timeline event's words: "labelled it refund, vip and removed late". */
export function labelChangeText(data) {
  const added = (data && data.added) || [];
  const removed = (data && data.removed) || [];
  const parts = [];
  if (added.length) parts.push("labelled it " + added.join(", "));
  if (removed.length) parts.push("removed the label" + (removed.length > 1 ? "s " : " ") + removed.join(", "));
  return parts.join(" and ") || "changed the labels";
}
