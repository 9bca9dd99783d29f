/*
 * handoff chat widget: embed with one tag,
 *   <script src="https://support.example.com/widget.js" async></script>
 * optional attributes: data-title, data-name, data-user-id + data-user-hash (identity
 * verification: hex HMAC-SHA256 of the user id with the site secret), data-open="true" (open
 * on the first page load; later loads remember whether the visitor left it open or closed),
 * data-sound="on" (a chime for replies while the widget is closed; the visitor can switch it
 * in the ⋯ menu), data-greeting="Hello!" (or data-greeting-es="¡Hola!" per language,
 * data-greeting="off" for none; default: the catalog's greeting), data-prechat="name,email"
 * (a pre-chat form, off by default) with data-prechat-required="email".
 *
 * Every word it shows comes from the server's `texts` frame, in the visitor's language (the
 * notice catalogs), and changes live when that language does.
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
    // UI: the texts' language, the longest message accepted, unread replies, the chime.
    language: "", maxText: 8000, connectionKey: "connecting", seenId: loadNumber("seen"), unread: 0,
    sound: loadSound(), chimes: 0, audio: null, menuOpen: false,
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

  // Elements whose words come from the texts frame: [element, attribute or "text", key].
  const bound = [];
  function t(key, params) {
    let text = state.texts[key] || "";
    for (const [name, value] of Object.entries(params || {})) text = text.split("{" + name + "}").join(String(value));
    return text;
  }
  function bind(el, attr, key) {
    bound.push([el, attr, key]);
    if (attr === "text") el.textContent = t(key); else el.setAttribute(attr, t(key));
    return el;
  }

  const host = h("div", { id: "handoff-widget" });
  const root = host.attachShadow({ mode: "open" });
  root.append(h("link", { rel: "stylesheet", href: base + "/widget.css" }));
  const list = h("div", { class: "hw-list", role: "log", "aria-live": "polite", tabindex: "0" });
  const spinnerLabel = h("span", { class: "hw-spinner-label" });
  const spinner = h("div", { class: "hw-spinner", hidden: true, role: "status" }, h("span", { class: "hw-dots" }), spinnerLabel);
  const typingLine = h("div", { class: "hw-typing", hidden: true });
  const status = h("span", { class: "hw-status" });
  const input = h("textarea", { class: "hw-input", rows: 1, dir: "auto", "aria-describedby": "hw-limit" });
  const limitLine = h("div", { class: "hw-limit", id: "hw-limit", role: "alert", hidden: true });
  const fileInput = h("input", { type: "file", class: "hw-file", hidden: true });
  const attachBtn = h("button", { type: "button", class: "hw-attach" }, "+");
  const sendBtn = h("button", { type: "submit", class: "hw-send" });
  const form = h("form", { class: "hw-composer" }, attachBtn, fileInput, input, sendBtn);
  const title = h("strong", {});
  const menuButton = h("button", { type: "button", class: "hw-menu-button", id: "hw-menu-button", "aria-haspopup": "menu",
    "aria-expanded": "false", "aria-controls": "hw-menu" }, "⋯");
  const soundItem = h("button", { type: "button", class: "hw-menu-item", role: "menuitem", tabindex: "-1", "data-action": "sound" });
  const closeItem = h("button", { type: "button", class: "hw-menu-item", role: "menuitem", tabindex: "-1", "data-action": "close" });
  const menu = h("div", { class: "hw-menu", id: "hw-menu", role: "menu", hidden: true, "aria-labelledby": "hw-menu-button" },
    soundItem, closeItem);
  const closeButton = h("button", { type: "button", class: "hw-close", onclick: () => toggle(false) }, "×");
  const prechat = h("form", { class: "hw-prechat", hidden: true, novalidate: true });
  const panel = h("section", { class: "hw-panel", hidden: true, "data-connection": "connecting" },
    h("header", { class: "hw-header" },
      h("div", {}, title, status),
      h("div", { class: "hw-actions" }, h("div", { class: "hw-menu-wrap" }, menuButton, menu), closeButton)),
    list, prechat, spinner, typingLine, limitLine, form);
  const launcherLabel = h("span", { class: "hw-launcher-label" });
  const badge = h("span", { class: "hw-badge", hidden: true, "aria-hidden": "true" });
  const launcher = h("button", { type: "button", class: "hw-launcher", "aria-expanded": "false", onclick: () => toggle() },
    launcherLabel, badge);
  root.append(panel, launcher);
  bind(input, "placeholder", "placeholder");
  bind(input, "aria-label", "message");
  bind(attachBtn, "aria-label", "attach");
  bind(attachBtn, "title", "attach");
  bind(sendBtn, "text", "send");
  bind(menuButton, "aria-label", "menu");
  bind(closeItem, "text", "close");
  bind(closeButton, "aria-label", "close");
  bind(launcherLabel, "text", "launcher");
  bind(panel, "aria-label", "title");
  if (opts.title) title.textContent = opts.title; else bind(title, "text", "title");

  function toggle(force) {
    state.open = force === undefined ? !state.open : force;
    panel.hidden = !state.open;
    launcher.classList.toggle("hw-open", state.open);
    launcher.setAttribute("aria-expanded", String(state.open));
    try { sessionStorage.setItem(store + "open", state.open ? "1" : "0"); } catch (e) { /* private mode */ }
    if (state.open) { markSeen(); input.focus(); scroll(); } else { closeMenu(false); }
    showUnread();
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

  /** A separator: its stored text (replay), else the current texts' label `key`, relabelled live. */
  function separator(text, id, key) {
    const label = h("span", {});
    if (text) label.textContent = text; else bind(label, "text", key);
    place(h("div", { class: "hw-separator", role: "separator" }, label), id);
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
      separator(m.text, m.id, notice === "ai_resumed" ? "ai_resumed" : "live_chat");
      if (notice === "ai_resumed") { endCycle(); state.resumedShown = true; } else { state.cycleSeparator = true; }
    } else if (m.kind === "notice" || notice) {
      if (["waiting", "agent_joined", "transferred"].includes(notice)) {
        if (!state.cycleSeparator) { separator("", m.id, "live_chat"); state.cycleSeparator = true; }
        state.resumedShown = false;
        if (notice === "waiting") setSpinner(true, m.text || state.texts.waiting);
        else line(m.text, notice, m.id);
        if (notice === "agent_joined") setSpinner(false);
      } else if (notice === "ai_resumed") {
        if (!state.resumedShown) separator("", m.id, "ai_resumed");
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
        author === "bot" ? bind(h("div", { class: "hw-author" }), "text", "bot") : null,
        m.text ? h("div", { class: "hw-text", dir: "auto" }, linkify(m.text)) : null,
        renderAttachments(m.attachments),
        timestamp(m.created_at));
      if (m.client_id) state.byClient.set(m.client_id, el);
      place(el, m.id);
      if (author === "agent" || author === "bot") arrived(m.id);
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
    else if (frame.type === "texts") applyTexts(frame); else if (frame.type === "ready") {
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
        if (el) markFailed(el, frame.error);
      } else {
        setTimeout(() => { item.inflight = false; flush(); }, (frame.retry || 2) * 1000);
      }
    } else if (frame.type === "typing") {
      if (frame.typing) showAgentTyping(frame.name); else hideAgentTyping();
    }
  }

  /** Shows the connection state in the header and as `data-connection` on the panel. */
  function showConnection(connection, key) {
    state.connectionKey = key;
    status.textContent = t(key);
    panel.dataset.connection = connection;
  }

  function showAgentTyping(name) {
    typingLine.textContent = t("typing", { name: name || t("support") });
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
    url.searchParams.set("lang", navigator.language || "");
    const ws = new WebSocket(url.href);
    state.ws = ws;
    ws.onmessage = (ev) => { try { onFrame(JSON.parse(ev.data)); } catch (e) { /* ignore bad frame */ } };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ready = false;
      state.ws = null;
      showConnection("offline", "reconnecting");
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
    if (!text || !withinLimit(text)) return;
    input.value = "";
    wsSend({ type: "typing", typing: false });
    state.typingSent = 0;
    queue(text, []);
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
  });
  input.addEventListener("input", () => {
    if (!limitLine.hidden) withinLimit(input.value.trim());
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
    if (file.size > MAX_FILE) { list.append(h("div", { class: "hw-notice hw-error", role: "alert" }, t("file_too_large"))); scroll(); return; }
    const data = new FormData();
    data.append("file", file, file.name);
    const res = await fetch(base + "/widget/upload", { method: "POST", headers: { Authorization: "Bearer " + state.token }, body: data });
    if (!res.ok) { list.append(h("div", { class: "hw-notice hw-error", role: "alert" }, t("upload_failed"))); scroll(); return; }
    const uploaded = await res.json();
    queue(input.value.trim(), [uploaded]);
    input.value = "";
  });

  // ---- words: the texts frame ----------------------------------------------------------
  /** Applies a `texts` frame: every bound label, the status, the greeting, in the new language. */
  function applyTexts(frame) {
    Object.assign(state.texts, frame.texts || {});
    if (frame.language) { state.language = frame.language; panel.lang = frame.language; launcher.lang = frame.language; }
    if (frame.max_text) state.maxText = frame.max_text;
    for (const [el, attr, key] of bound) {
      if (attr === "text") el.textContent = t(key); else el.setAttribute(attr, t(key));
    }
    status.textContent = t(state.connectionKey);
    if (!spinnerLabel.textContent) spinnerLabel.textContent = state.texts.waiting;
    soundItem.textContent = t(state.sound ? "sound_off" : "sound_on");
    if (!limitLine.hidden) withinLimit(input.value.trim());
    relabelGreeting();
    showUnread();
  }

  // ---- message text: links, time ------------------------------------------------------
  const LINK = /\b(?:https?:\/\/|mailto:)[^\s<>"]+/gi;

  /** Text nodes and links (http, https and mailto only, opened in a new tab without referrer). */
  function linkify(text) {
    const parts = [];
    let last = 0;
    for (const match of text.matchAll(LINK)) {
      const url = trimLink(match[0]);
      const href = safeLink(url);
      if (match.index > last) parts.push(text.slice(last, match.index));
      parts.push(href ? h("a", { href: href, target: "_blank", rel: "noopener noreferrer", class: "hw-link" }, url) : url);
      last = match.index + url.length;
    }
    parts.push(text.slice(last));
    return parts;
  }
  // Punctuation after a link ends the sentence, not the link; a closing bracket stays when it closes one in the link.
  function trimLink(url) {
    for (;;) {
      const end = url.slice(-1);
      const closes = { ")": "(", "]": "[" }[end];
      if (".,;:!?'\"".includes(end) || (closes && url.split(end).length > url.split(closes).length)) url = url.slice(0, -1);
      else return url;
    }
  }
  function safeLink(url) {
    try {
      const u = new URL(url);
      return ["http:", "https:", "mailto:"].includes(u.protocol) ? u.href : null;
    } catch (e) { return null; }
  }

  function timestamp(seconds) {
    const when = new Date((seconds || Date.now() / 1000) * 1000);
    let label;
    try {
      label = new Intl.DateTimeFormat(state.language || undefined, { hour: "2-digit", minute: "2-digit" }).format(when);
    } catch (e) { label = when.toLocaleTimeString(); }
    return h("time", { class: "hw-time", datetime: when.toISOString() }, label);
  }

  function markFailed(el, reason) {
    el.classList.remove("hw-sending");
    el.classList.add("hw-failed");
    el.title = reason;
    if (!el.querySelector(".hw-failed-reason")) el.append(h("div", { class: "hw-failed-reason", role: "alert" }, t("not_sent")));
  }

  /** True when `text` fits the server's limit; else says why under the input (the text stays). */
  function withinLimit(text) {
    const count = Array.from(text).length;  // code points, as the server counts
    const over = count > state.maxText;
    limitLine.hidden = !over;
    input.setAttribute("aria-invalid", over ? "true" : "false");
    const number = (n) => n.toLocaleString(state.language || undefined);
    limitLine.textContent = over ? t("too_long", { count: number(count), limit: number(state.maxText) }) : "";
    return !over;
  }

  // ---- unread replies and the chime ----------------------------------------------------
  function loadNumber(key) {
    try { return parseInt(localStorage.getItem(store + key) || "0", 10) || 0; } catch (e) { return 0; }
  }
  function loadSound() {
    let saved = null;
    try { saved = localStorage.getItem(store + "sound"); } catch (e) { /* private mode */ }
    return saved ? saved === "on" : opts.sound === "on" || opts.sound === "true";
  }

  /** A bot or agent message `id` was drawn: seen when the widget is open, else one more unread. */
  function arrived(id) {
    if (!id) return;
    if (state.open) markSeen();
    else if (id > state.seenId) { state.unread += 1; showUnread(); }
    if (state.ready && (!state.open || document.hidden)) chime();
  }
  function markSeen() {
    state.seenId = Math.max(state.seenId, state.lastId);
    state.unread = 0;
    try { localStorage.setItem(store + "seen", String(state.seenId)); } catch (e) { /* private mode */ }
  }
  function showUnread() {
    const count = state.open ? 0 : state.unread;
    badge.hidden = count === 0;
    badge.textContent = count > 99 ? "99+" : String(count);
    const label = t(state.open ? "close" : "open");
    launcher.setAttribute("aria-label", count ? label + ". " + t("unread", { count: count }) : label);
  }
  function chime() {
    if (!state.sound) return;
    state.chimes += 1;
    try {
      state.audio = state.audio || new (window.AudioContext || window.webkitAudioContext)();
      const now = state.audio.currentTime;
      const tone = state.audio.createOscillator();
      const gain = state.audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.08, now);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.3);
      tone.connect(gain).connect(state.audio.destination);
      tone.start(now);
      tone.stop(now + 0.3);
    } catch (e) { /* no audio here */ }
  }

  // ---- the ⋯ menu (WAI-ARIA menu button) and Escape -------------------------------------
  const menuItems = () => [soundItem, closeItem];
  function openMenu(last) {
    state.menuOpen = true;
    menu.hidden = false;
    menuButton.setAttribute("aria-expanded", "true");
    const items = menuItems();
    items[last ? items.length - 1 : 0].focus();
  }
  function closeMenu(focusButton) {
    if (!state.menuOpen) return;
    state.menuOpen = false;
    menu.hidden = true;
    menuButton.setAttribute("aria-expanded", "false");
    if (focusButton) menuButton.focus();
  }
  menuButton.addEventListener("click", () => { if (state.menuOpen) closeMenu(true); else openMenu(false); });
  menuButton.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") { ev.preventDefault(); openMenu(ev.key === "ArrowUp"); }
  });
  menu.addEventListener("keydown", (ev) => {
    const items = menuItems();
    const at = items.indexOf(root.activeElement);
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 }[ev.key];
    if (to !== undefined) { ev.preventDefault(); items[(to + items.length) % items.length].focus(); }
    else if (ev.key === "Tab") closeMenu(false);
  });
  soundItem.addEventListener("click", () => {
    state.sound = !state.sound;
    try { localStorage.setItem(store + "sound", state.sound ? "on" : "off"); } catch (e) { /* private mode */ }
    soundItem.textContent = t(state.sound ? "sound_off" : "sound_on");
    closeMenu(true);
  });
  closeItem.addEventListener("click", () => { closeMenu(false); toggle(false); launcher.focus(); });
  panel.addEventListener("click", (ev) => {
    if (state.menuOpen && !ev.composedPath().some((el) => el === menu || el === menuButton)) closeMenu(false);
  });
  panel.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    ev.preventDefault();
    if (state.menuOpen) closeMenu(true);
    else { toggle(false); launcher.focus(); }
  });

  // ---- greeting and pre-chat form --------------------------------------------------------
  let greetingText = null;
  /** The greeting atop the conversation: the site's text (for the language), else the catalog's. */
  function showGreeting() {
    if (opts.greeting === "off") return;
    greetingText = h("div", { class: "hw-text", dir: "auto" });
    list.prepend(h("div", { class: "hw-msg hw-bot hw-greeting", "data-author": "greeting" },
      bind(h("div", { class: "hw-author" }), "text", "bot"), greetingText));
    relabelGreeting();
  }
  function relabelGreeting() {
    if (!greetingText) return;
    const lang = state.language || "";
    const own = opts["greeting" + lang.charAt(0).toUpperCase() + lang.slice(1)] || opts.greeting;
    greetingText.textContent = own || t("greeting");
  }

  const prechatFields = (opts.prechat || "").split(",").map((f) => f.trim()).filter((f) => f === "name" || f === "email");
  const requiredFields = new Set((opts.prechatRequired || "").split(",").map((f) => f.trim()));

  /** The pre-chat form, when the site asks for one and this visitor has not answered it yet. */
  function showPrechat() {
    let done = false;
    try { done = localStorage.getItem(store + "prechat") === "done"; } catch (e) { /* private mode */ }
    if (!prechatFields.length || opts.userId || done) return;
    const fields = prechatFields.map((name) => {
      const required = requiredFields.has(name);
      const control = h("input", { id: "hw-pc-" + name, name: name, type: name === "email" ? "email" : "text", dir: "auto",
        autocomplete: name, maxlength: name === "email" ? 320 : 200, "aria-required": required ? "true" : null,
        "aria-describedby": "hw-pc-" + name + "-error" });
      const error = h("div", { class: "hw-field-error", id: "hw-pc-" + name + "-error", hidden: true });
      prechat.append(h("div", { class: "hw-field" },
        h("label", { for: control.id }, bind(h("span", {}), "text", name), " ",
          required ? null : bind(h("span", { class: "hw-optional" }), "text", "optional")),
        control, error));
      return { name, control, error, required };
    });
    const failure = h("div", { class: "hw-field-error", role: "alert", hidden: true });
    prechat.prepend(bind(h("p", { class: "hw-prechat-intro" }), "text", "prechat_intro"));
    prechat.append(failure, bind(h("button", { type: "submit", class: "hw-send" }), "text", "start"));
    prechat.hidden = false;
    form.hidden = true;
    prechat.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const answers = {};
      const wrong = fields.filter((f) => {
        const value = f.control.value.trim();
        const problem = !value && f.required ? "required" : value && f.control.validity.typeMismatch ? "bad_email" : "";
        fieldError(f, problem);
        if (value && !problem) answers[f.name] = value;
        return problem;
      });
      if (wrong.length) { wrong[0].control.focus(); return; }
      failure.hidden = true;
      try {
        if (!state.token) await ensureSession();
        const res = await fetch(base + "/widget/contact", { method: "POST", body: JSON.stringify(answers),
          headers: { "Content-Type": "application/json", Authorization: "Bearer " + state.token } });
        const email = fields.find((f) => f.name === "email");
        if (res.status === 400 && email) { fieldError(email, "bad_email"); email.control.focus(); return; }
        if (!res.ok) throw new Error("contact refused: " + res.status);
      } catch (e) {
        failure.textContent = t("not_sent");
        failure.hidden = false;
        return;
      }
      try { localStorage.setItem(store + "prechat", "done"); } catch (e) { /* private mode */ }
      prechat.hidden = true;
      form.hidden = false;
      input.focus();
    });
  }
  function fieldError(field, key) {
    field.error.hidden = !key;
    field.error.textContent = key ? t(key) : "";
    field.control.setAttribute("aria-invalid", key ? "true" : "false");
  }

  window.HandoffWidget = {
    open: () => toggle(true),
    close: () => toggle(false),
    /** Drop the live connection (and stay offline until reconnect()): used by tests and demos. */
    disconnect: () => { state.paused = true; if (state.ws) state.ws.close(); },
    reconnect: () => { state.paused = false; state.failures = 0; state.backoff = 500; connect(); },
    get lastId() { return state.lastId; },
    get connected() { return state.ready; },
    /** Replies not seen yet (shown on the launcher) and chimes played: for tests and embedding sites. */
    get unread() { return state.unread; },
    get chimes() { return state.chimes; },
  };

  function mount() {
    document.body.append(host);
    let remembered = null;
    try { remembered = sessionStorage.getItem(store + "open"); } catch (e) { /* private mode */ }
    if (remembered === "1" || (remembered === null && opts.open === "true")) toggle(true);
    showGreeting();
    showPrechat();
    connect();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
