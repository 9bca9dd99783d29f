// A confirmation for destructive actions on a colleague's ticket (hand back, close, transfer):
// a modal <dialog> naming who is answering the customer, with Cancel focused first.
import { h } from "../dom.js";

/** Ask `question` with `ok` as the confirming button's label; resolves true when confirmed. */
export function confirmDialog(question, ok) {
  return new Promise((resolve) => {
    const cancel = h("button", { type: "button", "data-action": "confirm-cancel" }, "Cancel");
    const yes = h("button", { type: "button", class: "danger", "data-action": "confirm-ok" }, ok);
    const dialog = h("dialog", { class: "card dialog", "data-dialog": "confirm", "aria-labelledby": "confirm-question" },
      h("p", { id: "confirm-question" }, question), h("div", { class: "dialog-actions" }, cancel, yes));
    let answer = false;
    cancel.addEventListener("click", () => dialog.close());
    yes.addEventListener("click", () => { answer = true; dialog.close(); });
    dialog.addEventListener("close", () => { dialog.remove(); resolve(answer); });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
