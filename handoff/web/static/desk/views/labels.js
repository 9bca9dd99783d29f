// Labels on the desk (issue 16): coloured chips on list rows and pages, and the editor an agent
// labels a conversation with from its ticket page or the conversation page ("Edit labels": tick
// the labels, or create one with a name and a colour, then save). Saving PUTs the whole set; other
// agents' pages follow the live `conversation.labels` event through showLabels().
import { api } from "../api.js";
import { h, toast } from "../dom.js";
import { textOn, toggled } from "../labeling.js";

let directory = null;  // every label ({id, name, color}), loaded once per page load and after a create

/** Every label (GET /api/v1/labels), from the cache unless `fresh`. */
export async function loadLabels(fresh = false) {
  if (directory && !fresh) return directory;
  const res = await api("GET", "/api/v1/labels");
  directory = res.ok ? res.data.labels || [] : directory || [];
  return directory;
}

/** One label as a chip in its colour (set through the CSSOM: the CSP refuses style attributes). */
export function chip(label) {
  const el = h("span", { class: "label-chip", "data-label": label.name }, label.name);
  el.style.backgroundColor = label.color;
  el.style.color = textOn(label.color);
  return el;
}

/** A row's or page's labels as chips, or null when it has none. */
export function labelChips(labels) {
  if (!labels || !labels.length) return null;
  return h("span", { class: "labels", "data-field": "labels" }, labels.map(chip));
}

/** The labels of `conversation` ({id, labels}) with an "Edit labels" button; showLabels() redraws it. */
export function labelsEditor(conversation) {
  const box = h("div", { class: "labels-editor", "data-labels-for": conversation.id });
  draw(box, conversation.id, conversation.labels || []);
  return box;
}

/** Show `labels` wherever the page shows conversation `id`'s (after a save, or a live event). */
export function showLabels(id, labels) {
  for (const box of document.querySelectorAll("[data-labels-for]")) {
    if (Number(box.dataset.labelsFor) === id) draw(box, id, labels);
  }
}

function draw(box, id, labels) {
  box.replaceChildren(labelChips(labels) || h("span", { class: "muted" }, "No labels"), " ",
    h("button", { type: "button", class: "link", "data-action": "edit-labels",
      onclick: () => labelsDialog(id, labels.map((l) => l.name)) }, "Edit labels"));
}

/** The dialog: tick labels, create one, save (PUT /api/v1/conversations/{id}/labels). */
async function labelsDialog(id, current) {
  let names = current.slice();
  const list = h("div", { class: "label-options", role: "group", "aria-label": "Labels" });
  const drawList = (labels) => list.replaceChildren(...(labels.length ? labels.map((label) => {
    const box = h("input", { type: "checkbox", value: label.name, "data-label-option": label.name,
      checked: names.some((n) => n.toLowerCase() === label.name.toLowerCase()) });
    box.addEventListener("change", () => { names = toggled(names, label.name, box.checked); });
    return h("label", { class: "label-option" }, box, chip(label));
  }) : [h("p", { class: "muted" }, "No labels yet: create the first one below.")]));
  drawList(await loadLabels());

  const name = h("input", { type: "text", maxlength: 40, "data-field": "new-label-name", placeholder: "e.g. needs-human",
    "aria-label": "New label name" });
  const color = h("input", { type: "color", value: "#1f93ff", "data-field": "new-label-color", "aria-label": "New label colour" });
  const error = h("p", { class: "error", role: "alert" });
  const create = async () => {
    error.textContent = "";
    const res = await api("POST", "/api/v1/labels", { name: name.value, color: color.value });
    if (!res.ok) { error.textContent = res.data.error || "Could not create the label"; return; }
    names = toggled(names, res.data.name, true);
    name.value = "";
    drawList(await loadLabels(true));
  };
  const dialog = h("dialog", { class: "card dialog", "data-dialog": "labels", "aria-labelledby": "labels-title" },
    h("form", { method: "dialog" },
      h("h2", { id: "labels-title" }, "Labels"), list,
      h("div", { class: "new-label" }, name, color,
        h("button", { type: "button", "data-action": "create-label", onclick: create }, "Create")),
      error,
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { type: "submit", class: "primary", "data-action": "save-labels" }, "Save"))));
  name.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); create(); } });
  dialog.addEventListener("close", () => dialog.remove());
  dialog.querySelector("form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const res = await api("PUT", "/api/v1/conversations/" + id + "/labels", { labels: names });
    if (!res.ok) { error.textContent = res.data.error || "Could not save the labels"; return; }
    dialog.close();
    showLabels(id, res.data.labels);
    toast("Labels saved");
  });
  document.body.append(dialog);
  dialog.showModal();
}
