/*
 * handoff chat widget: embed with one tag,
 *   <script src="https://support.example.com/widget.js" async></script>
 * optional attributes: data-title, data-name, data-user-id + data-user-hash (identity
 * verification: hex HMAC-SHA256 of the user id with the site secret), data-open="true".
 *
 * The widget lives in a shadow root, renders every text with textContent, keeps unsent
 * messages (with their client ids) until the server acknowledges them, and replays what it
 * missed after a reconnect from the last message id it saw. It acknowledges the bot, agent and
 * notice messages it shows (`delivered` frames): only then are they marked delivered.
 */
(function () {
  "use strict";
  if (window.HandoffWidget) return;

  const script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  const base = new URL(script ? script.src : "/widget.js", location.href).origin;
  const opts = (script && script.dataset) || {};
  const store = "handoff:" + base + ":";
  const MAX_FILE = 10 * 1024 * 1024;

  const state = {
    token: null, ws: null, ready: false, lastId: 0, seen: new Set(), byClient: new Map(),
    pending: loadPending(), acks: [], backoff: 500, paused: false, failures: 0, spinner: false,
    // The labels drawn here (spinner, separators), in the visitor's language: the server's `texts` frame.
    texts: { waiting: "", live_chat: "", ai_resumed: "" },
    typingSent: 0, typingTimer: null, agentTypingTimer: null, cycleSeparator: false, open: false,
  };

  // ---- DOM -------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const host = h("div", { id: "handoff-widget" });
  const root = host.attachShadow({ mode: "open" });
  root.append(h("link", { rel: "stylesheet", href: base + "/widget.css" }));
  const list = h("div", { class: "hw-list", role: "log", "aria-live": "polite" });
  const spinnerLabel = h("span", { class: "hw-spinner-label" });
  const spinner = h("div", { class: "hw-spinner", hidden: true, role: "status" }, h("span", { class: "hw-dots" }), spinnerLabel);
  const typingLine = h("div", { class: "hw-typing", hidden: true });
  const status = h("span", { class: "hw-status" }, "connecting…");
  const input = h("textarea", { class: "hw-input", rows: 1, placeholder: "Type a message…", "aria-label": "Message" });
  const fileInput = h("input", { type: "file", class: "hw-file", hidden: true });
  const attachBtn = h("button", { type: "button", class: "hw-attach", title: "Attach a file", "aria-label": "Attach a file" }, "+");
  const sendBtn = h("button", { type: "submit", class: "hw-send", "aria-label": "Send" }, "Send");
  const form = h("form", { class: "hw-composer" }, attachBtn, fileInput, input, sendBtn);
  const panel = h("section", { class: "hw-panel", hidden: true, "aria-label": "Chat", "data-connection": "connecting" },
    h("header", { class: "hw-header" },
      h("div", {}, h("strong", {}, opts.title || "Chat with us"), status),
      h("button", { type: "button", class: "hw-close", "aria-label": "Close chat", onclick: () => toggle(false) }, "×")),
    list, spinner, typingLine, form);
  const launcher = h("button", { type: "button", class: "hw-launcher", "aria-label": "Open chat", onclick: () => toggle() }, "Chat");
  root.append(panel, launcher);

  function toggle(force) {
    state.open = force === undefined ? !state.open : force;
    panel.hidden = !state.open;
    launcher.classList.toggle("hw-open", state.open);
    if (state.open) { input.focus(); scroll(); }
  }
  function scroll() { list.scrollTop = list.scrollHeight; }

  function safeUrl(url) {
    try {
      const u = new URL(url, base);
      if (u.pathname.startsWith("/media/") || u.pathname.startsWith("/widget/files/")) return base + u.pathname;
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch (e) { return null; }
  }

  function renderAttachments(items) {
    return (items || []).map((a) => {
      const url = safeUrl(a.url || "");
      if (!url) return null;
      if ((a.content_type || "").startsWith("image/") && a.content_type !== "image/svg+xml") {
        return h("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "hw-image" },
          h("img", { src: url, alt: a.filename || "image" }));
      }
      return h("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "hw-fileLink", download: a.filename || "file" },
        "📎 " + (a.filename || "file"));
    });
  }

  // Messages are kept in id order (a replay can deliver an older message after a newer
  // local one); messages still being sent have no id yet and stay at the bottom.
  function place(el, id) {
    if (id) {
      el.dataset.id = id;
      for (const other of list.children) {
        const otherId = parseInt(other.dataset.id || "0", 10);
        if ((otherId && otherId > id) || (!otherId && other.classList.contains("hw-sending"))) {
          list.insertBefore(el, other);
          return;
        }
      }
    }
    list.append(el);
  }

  function separator(text, id) {
    place(h("div", { class: "hw-separator", role: "separator" }, h("span", {}, text)), id);
  }

  function line(text, notice, id) {
    place(h("div", { class: "hw-notice", "data-notice": notice || "info" }, text), id);
  }

  function endCycle() {
    setSpinner(false);
    state.cycleSeparator = false;
    state.resumedShown = false;
  }

  function setSpinner(on, label) {
    state.spinner = on;
    spinner.hidden = !on;
    if (label) spinnerLabel.textContent = label;
  }

  // ---- messages ----------------------------------------------------------------------
  function render(m) {
    if (m.id && state.seen.has(m.id)) return;
    if (m.client_id && state.byClient.has(m.client_id)) {
      const el = state.byClient.get(m.client_id);
      el.classList.remove("hw-sending", "hw-failed");
      if (m.id && !el.dataset.id) {
        state.seen.add(m.id); state.lastId = Math.max(state.lastId, m.id);
        el.remove(); place(el, m.id);
      }
      return;
    }
    if (m.id) { state.seen.add(m.id); state.lastId = Math.max(state.lastId, m.id); }
    const notice = m.notice || "";
    // Separators are stored as activity messages (seen on replay) but never sent live: the
    // notices that go with them ("waiting", "ai_resumed") draw them when they are missing.
    if (m.kind === "separator") {
      separator(m.text || (notice === "ai_resumed" ? state.texts.ai_resumed : state.texts.live_chat), m.id);
      if (notice === "ai_resumed") { endCycle(); state.resumedShown = true; } else { state.cycleSeparator = true; }
    } else if (m.kind === "notice" || notice) {
      if (["waiting", "agent_joined", "transferred"].includes(notice)) {
        if (!state.cycleSeparator) { separator(state.texts.live_chat, m.id); state.cycleSeparator = true; }
        state.resumedShown = false;
        if (notice === "waiting") setSpinner(true, m.text || state.texts.waiting);
        else line(m.text, notice, m.id);
        if (notice === "agent_joined") setSpinner(false);
      } else if (notice === "ai_resumed") {
        if (!state.resumedShown) separator(state.texts.ai_resumed, m.id);
        endCycle();
        if (m.text) line(m.text, notice, m.id);
      } else {
        if (notice === "closed") endCycle();
        line(m.text, notice, m.id);
      }
    } else {
      const author = m.author || "system";
      if (author === "agent") { setSpinner(false); hideAgentTyping(); }
      const el = h("div", { class: "hw-msg hw-" + author, "data-author": author },
        author === "agent" && m.author_name ? h("div", { class: "hw-author" }, m.author_name) : null,
        author === "bot" ? h("div", { class: "hw-author" }, "AI assistant") : null,
        m.text ? h("div", { class: "hw-text" }, m.text) : null,
        renderAttachments(m.attachments));
      if (m.client_id) state.byClient.set(m.client_id, el);
      place(el, m.id);
    }
    scroll();
  }

  function newClientId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function loadPending() {
    try { return JSON.parse(localStorage.getItem(store + "pending") || "[]"); } catch (e) { return []; }
  }
  function savePending() {
    try { localStorage.setItem(store + "pending", JSON.stringify(state.pending)); } catch (e) { /* private mode */ }
  }

  function queue(text, attachments) {
    const item = { client_id: newClientId(), text: text, attachments: attachments.map((a) => a.id) };
    state.pending.push(item);
    savePending();
    render({ client_id: item.client_id, author: "customer", text: text, attachments: attachments });
    state.byClient.get(item.client_id).classList.add("hw-sending");
    flush();
  }

  function flush() {
    if (!state.ready) return;
    for (const item of state.pending) {
      if (item.inflight) continue;
      item.inflight = true;
      wsSend({ type: "message", client_id: item.client_id, text: item.text, attachments: item.attachments });
    }
  }

  function wsSend(frame) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
  }

  // Every shown message that is not the visitor's own, even one shown before: the server
  // ignores what was acknowledged already. Sent in one frame per burst (a replay).
  function acknowledge(m) {
    if (!m || typeof m.id !== "number" || m.author === "customer" || m.kind === "separator") return;
    state.acks.push(m.id);
    if (state.acks.length === 1) setTimeout(sendAcks, 0);
  }
  function sendAcks() {
    while (state.acks.length) wsSend({ type: "delivered", ids: state.acks.splice(0, 500) });
  }

  function onFrame(frame) {
    if (frame.type === "message") { render(frame.message); acknowledge(frame.message); }
    else if (frame.type === "texts") {
      Object.assign(state.texts, frame.texts || {});
      if (!spinnerLabel.textContent) spinnerLabel.textContent = state.texts.waiting;
    } else if (frame.type === "ready") {
      state.ready = true; state.failures = 0; state.backoff = 500;
      showConnection("online", "online");
      // Messages stored before the connection dropped came back in the replay with their
      // client ids: they need no resend. The rest (typed offline, or unacknowledged) go again.
      state.pending = state.pending.filter((p) => {
        const el = state.byClient.get(p.client_id);
        return !(el && el.dataset.id);
      });
      savePending();
      for (const item of state.pending) {
        item.inflight = false;
        if (!state.byClient.has(item.client_id)) {
          render({ client_id: item.client_id, author: "customer", text: item.text });
          state.byClient.get(item.client_id).classList.add("hw-sending");
        }
      }
      flush();
    } else if (frame.type === "ack") {
      state.pending = state.pending.filter((p) => p.client_id !== frame.client_id);
      savePending();
      render({ id: frame.id, client_id: frame.client_id });
    } else if (frame.type === "error" && frame.client_id) {
      const item = state.pending.find((p) => p.client_id === frame.client_id);
      if (!item) return;
      if (frame.final) {
        state.pending = state.pending.filter((p) => p !== item);
        savePending();
        const el = state.byClient.get(frame.client_id);
        if (el) { el.classList.remove("hw-sending"); el.classList.add("hw-failed"); el.title = frame.error; }
      } else {
        setTimeout(() => { item.inflight = false; flush(); }, (frame.retry || 2) * 1000);
      }
    } else if (frame.type === "typing") {
      if (frame.typing) showAgentTyping(frame.name); else hideAgentTyping();
    }
  }

  /** Shows the connection state in the header and as `data-connection` on the panel. */
  function showConnection(connection, label) {
    status.textContent = label;
    panel.dataset.connection = connection;
  }

  function showAgentTyping(name) {
    typingLine.textContent = (name || "Support") + " is typing…";
    typingLine.hidden = false;
    clearTimeout(state.agentTypingTimer);
    state.agentTypingTimer = setTimeout(hideAgentTyping, 6000);
  }
  function hideAgentTyping() { typingLine.hidden = true; }

  // ---- connection --------------------------------------------------------------------
  async function ensureSession() {
    const body = { token: localStorage.getItem(store + "token") || undefined, name: opts.name || undefined };
    if (opts.userId) { body.user_id = opts.userId; body.user_hash = opts.userHash; }
    const res = await fetch(base + "/widget/session", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error("session refused: " + res.status);
    const data = await res.json();
    state.token = data.token;
    try { localStorage.setItem(store + "token", data.token); } catch (e) { /* private mode */ }
  }

  async function connect() {
    if (state.paused) return;
    try {
      if (!state.token || state.failures > 0) await ensureSession();
    } catch (e) {
      return retry();
    }
    const url = new URL("/widget/ws", base);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", state.token);
    url.searchParams.set("since", String(state.lastId));
    const ws = new WebSocket(url.href);
    state.ws = ws;
    ws.onmessage = (ev) => { try { onFrame(JSON.parse(ev.data)); } catch (e) { /* ignore bad frame */ } };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ready = false;
      state.ws = null;
      showConnection("offline", "reconnecting…");
      for (const item of state.pending) item.inflight = false;
      if (!state.paused) retry();
    };
  }

  function retry() {
    state.failures += 1;
    const delay = Math.min(state.backoff, 10000) * (0.75 + Math.random() / 2);
    state.backoff = Math.min(state.backoff * 2, 10000);
    setTimeout(connect, delay);
  }

  // ---- composer ----------------------------------------------------------------------
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    wsSend({ type: "typing", typing: false });
    state.typingSent = 0;
    queue(text, []);
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
  });
  input.addEventListener("input", () => {
    const now = Date.now();
    if (now - state.typingSent > 2000) { state.typingSent = now; wsSend({ type: "typing", typing: true }); }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => { state.typingSent = 0; wsSend({ type: "typing", typing: false }); }, 3000);
  });
  attachBtn.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    if (file.size > MAX_FILE) { list.append(h("div", { class: "hw-notice hw-error" }, "That file is larger than 10 MB.")); scroll(); return; }
    const data = new FormData();
    data.append("file", file, file.name);
    const res = await fetch(base + "/widget/upload", { method: "POST", headers: { Authorization: "Bearer " + state.token }, body: data });
    if (!res.ok) { list.append(h("div", { class: "hw-notice hw-error" }, "The file could not be uploaded.")); scroll(); return; }
    const uploaded = await res.json();
    queue(input.value.trim(), [uploaded]);
    input.value = "";
  });

  window.HandoffWidget = {
    open: () => toggle(true),
    close: () => toggle(false),
    /** Drop the live connection (and stay offline until reconnect()): used by tests and demos. */
    disconnect: () => { state.paused = true; if (state.ws) state.ws.close(); },
    reconnect: () => { state.paused = false; state.failures = 0; state.backoff = 500; connect(); },
    get lastId() { return state.lastId; },
    get connected() { return state.ready; },
  };

  function mount() {
    document.body.append(host);
    if (opts.open === "true") toggle(true);
    connect();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
