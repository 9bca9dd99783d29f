// The sign-in page shown when there is no session: email and password, or an API token.
import { state } from "../state.js";
import { api } from "../api.js";
import { h } from "../dom.js";

/** Show the sign-in forms (POST /desk/login); `message` is an error to show, `onSignedIn()` runs after success. */
export function showLogin(onSignedIn, message) {
  document.querySelector(".topbar").hidden = true;
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true, placeholder: "you@example.com" });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const token = h("input", { type: "password", name: "token", autocomplete: "off", placeholder: "API token" });
  async function submit(body) {
    const res = await api("POST", "/desk/login", body);
    if (!res.ok) { error.textContent = res.data.error || "Sign-in failed"; return; }
    state.me = res.data.agent;
    onSignedIn();
  }
  document.getElementById("view").replaceChildren(h("div", { class: "signin-page" },
    h("form", { class: "card signin-card", "data-form": "login", onsubmit: (ev) => { ev.preventDefault(); submit({ email: email.value, password: password.value }); } },
      h("h1", {}, "handoff desk"),
      h("label", {}, "Email", email),
      h("label", {}, "Password", password),
      h("button", { type: "submit", class: "primary" }, "Sign in"),
      error),
    h("form", { class: "card signin-card token", "data-form": "token", onsubmit: (ev) => { ev.preventDefault(); submit({ token: token.value }); } },
      h("label", {}, "Or sign in with your API token", token),
      h("button", { type: "submit" }, "Use token"))));
}
