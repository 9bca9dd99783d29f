// The Canned responses page (#canned): every saved reply with its shortcut, a form to add one,
// and Edit / Delete per row (GET/POST /api/v1/canned_responses, PATCH/DELETE …/{id}). Content
// may hold placeholders such as {{contact.name}} (Liquid, as in Chatwoot); the server checks
// them and says what is wrong, and the form keeps what was typed.
import { api } from "../api.js";
import { h, toast } from "../dom.js";
import { list } from "../format.js";

const HELP = "Type /shortcut in a reply (in Slack: a space, then /shortcut) to use it. Placeholders: {{contact.name}}, " +
  "{{contact.first_name}}, {{contact.email}}, {{agent.name}}, {{agent.first_name}}; an unknown name is left out, " +
  "or use {{ contact.first_name | default: \"there\" }}.";

/** Show the Canned responses page. */
export async function viewCanned() {
  const $view = document.getElementById("view");
  const res = await api("GET", "/api/v1/canned_responses");
  if (!res.ok) { $view.replaceChildren(h("p", { class: "empty" }, res.data.error || "Could not load canned responses")); return; }
  const rows = list(res.data, "canned_responses");
  $view.replaceChildren(h("section", { class: "canned" },
    h("h1", {}, "Canned responses"), h("p", { class: "muted" }, HELP),
    cannedForm(null),
    rows.length ? h("table", { class: "rows" },
      h("thead", {}, h("tr", {}, h("th", {}, "Shortcut"), h("th", {}, "Content"), h("th", {}, ""))),
      h("tbody", {}, rows.map(row)))
      : h("p", { class: "empty" }, "No canned responses yet.")));
}

function row(c) {
  const tr = h("tr", { "data-canned": c.id },
    h("td", { "data-label": "Shortcut" }, h("code", {}, "/" + c.short_code)),
    h("td", { "data-label": "Content", class: "canned-content" }, c.content),
    h("td", { class: "actions" },
      h("button", { type: "button", "data-action": "edit-canned", onclick: () => tr.replaceWith(editRow(c)) }, "Edit"),
      h("button", { type: "button", "data-action": "delete-canned", onclick: async () => {
        const res = await api("DELETE", "/api/v1/canned_responses/" + c.id);
        if (!res.ok) { toast(res.data.error || "Not deleted", "error"); return; }
        toast("/" + c.short_code + " deleted");
        viewCanned();
      } }, "Delete")));
  return tr;
}

function editRow(c) {
  return h("tr", { "data-canned": c.id }, h("td", { colspan: 3 }, cannedForm(c)));
}

/** The add form (`c` null) or the edit form of canned response `c`. */
function cannedForm(c) {
  const code = h("input", { name: "short_code", required: true, maxlength: 51, value: c ? c.short_code : "",
    placeholder: "shipping", "aria-label": "Shortcut" });
  const content = h("textarea", { name: "content", rows: 3, required: true, "aria-label": "Content",
    placeholder: "Hi {{contact.name}}, parcels leave our warehouse within 24 hours." });
  content.value = c ? c.content : "";
  const error = h("p", { class: "composer-error", role: "alert", "data-field": "canned-error", hidden: true });
  const form = h("form", { class: "card canned-form", "data-form": c ? "edit-canned" : "add-canned" },
    h("label", {}, "Shortcut /", code), content, error,
    h("div", { class: "composer-actions" },
      c ? h("button", { type: "button", onclick: () => viewCanned() }, "Cancel") : null,
      h("button", { type: "submit", class: "primary" }, c ? "Save" : "Add canned response")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { short_code: code.value, content: content.value };
    const res = c ? await api("PATCH", "/api/v1/canned_responses/" + c.id, body) : await api("POST", "/api/v1/canned_responses", body);
    if (!res.ok) { error.textContent = res.data.error || "Not saved"; error.hidden = false; return; }
    toast("/" + res.data.short_code + " saved");
    viewCanned();
  });
  return form;
}
