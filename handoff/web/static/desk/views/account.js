// The account page: the signed-in agent's name, email and password (POST /desk/account).
import { state } from "../state.js";
import { api } from "../api.js";
import { h, toast } from "../dom.js";

/** Show the page; after the first sign-in link it asks for an email and a password. */
export function viewAccount() {
  const me = state.me || {};
  const name = h("input", { name: "name", value: me.name || "" });
  const email = h("input", { type: "email", name: "email", value: me.email || "", autocomplete: "username" });
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password", minlength: 10, placeholder: "at least 10 characters" });
  const form = h("form", { class: "card account", "data-form": "account" },
    h("h1", {}, "Your account"),
    me.has_password ? null : h("p", { class: "warn" }, "Set an email and a password now: the sign-in link you used works only once."),
    h("label", {}, "Name", name), h("label", {}, "Email", email), h("label", {}, "New password", password),
    h("button", { type: "submit", class: "primary" }, "Save"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { name: name.value, email: email.value };
    if (password.value) body.password = password.value;
    const res = await api("POST", "/desk/account", body);
    if (!res.ok) { toast(res.data.error || "Not saved", "error"); return; }
    state.me = res.data.agent; password.value = "";
    document.querySelector(".me-name").textContent = state.me.name;
    toast("Saved");
    viewAccount();
  });
  document.getElementById("view").replaceChildren(h("section", { class: "panel narrow" }, form));
}
