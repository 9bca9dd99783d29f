/*
 * handoff web desk: a small single-page app over the REST API (/api/v1) and its live stream.
 * Same-origin cookie auth (set by /desk/login). Every piece of data is rendered with
 * textContent through h(); nothing from the server ever goes through innerHTML.
 */
(function () {
  "use strict";

  const $view = document.getElementById("view");
  const $toasts = document.getElementById("toasts");
  const $topbar = document.querySelector(".topbar");
  const state = { me: null, route: "", ticket: null, conversation: null, seen: new Set(), agents: null,
    stream: null, streamBackoff: 500, reloadTimer: null, typingSent: 0, customerTypingTimer: null,
    drafts: new Map(), viewSeq: 0, list: null, searches: new Map() };

  // ---- helpers -----------------------------------------------------------------------
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

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401 && !path.startsWith("/desk/")) { state.me = null; showLogin(); }
    return { ok: res.ok, status: res.status, data: data || {} };
  }

  function list(data, key) {
    if (Array.isArray(data)) return data;
    if (data && Array.isArray(data[key])) return data[key];
    if (data && Array.isArray(data.items)) return data.items;
    return [];
  }

  function toast(text, kind, action) {
    const el = h("div", { class: "toast " + (kind || "") }, h("span", {}, text), action || null);
    $toasts.append(el);
    setTimeout(() => el.remove(), 8000);
  }

  function when(value) {
    if (!value) return "";
    const d = new Date(typeof value === "number" ? value * 1000 : value);
    if (isNaN(d)) return "";
    const today = new Date().toDateString() === d.toDateString();
    return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleString();
  }

  function nameOf(person) {
    if (!person) return "";
    if (typeof person === "string") return person;
    return person.name || person.email || ("#" + (person.id ?? ""));
  }

  function contactName(c) {
    const contact = c && (c.contact || {});
    return (contact && (contact.name || contact.email)) || (c && (c.contact_name || c.contact_external_id)) || "Visitor";
  }

  function badge(text, kind) { return h("span", { class: "badge " + (kind || text) }, text); }
  const STATE_LABELS = { bot: "AI", human: "Live chat", ended: "Ended", open: "Open", on_you: "With agent",
    on_customer: "Waiting on customer", closed: "Closed" };
  function stateBadge(state) { return badge(STATE_LABELS[state] || state, state); }

  // ---- sign-in -----------------------------------------------------------------------
  function showLogin(message) {
    $topbar.hidden = true;
    const error = h("p", { class: "error", role: "alert" }, message || "");
    const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true, placeholder: "you@example.com" });
    const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
    const token = h("input", { type: "password", name: "token", autocomplete: "off", placeholder: "API token" });
    async function submit(body) {
      const res = await api("POST", "/desk/login", body);
      if (!res.ok) { error.textContent = res.data.error || "Sign-in failed"; return; }
      state.me = res.data.agent;
      start();
    }
    $view.replaceChildren(h("div", { class: "signin-page" },
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

  // ---- views -------------------------------------------------------------------------
  function route() {
    const hash = location.hash.replace(/^#/, "") || "conversations";
    state.route = hash;
    clearTimeout(state.reloadTimer);  // a list reload scheduled before navigating must not re-render this page
    state.ticket = null; state.conversation = null; state.seen = new Set(); state.list = null;
    // Live events that arrive while a ticket page loads are kept and applied once it has.
    state.buffer = hash.startsWith("ticket/") ? [] : null;
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", hash.startsWith(a.dataset.view));
    if (hash === "conversations") return viewConversations();
    if (hash.startsWith("tickets/")) return viewTickets(hash.split("/")[1]);
    if (hash.startsWith("ticket/")) return viewTicket(parseInt(hash.split("/")[1], 10));
    if (hash === "account") return viewAccount();
    return viewConversations();
  }

  function scheduleReload() {
    if (state.route.startsWith("ticket/")) return;
    clearTimeout(state.reloadTimer);
    state.reloadTimer = setTimeout(refresh, 250);
  }

  // Show what changed on this page: a list reloads its rows only, any other page renders again.
  function refresh() {
    if (state.list && state.list.route === state.route) return loadList(state.list, "refresh");
    return route();
  }

  async function takeover(conversationId, button) {
    if (button) button.disabled = true;
    const res = await api("POST", "/api/v1/conversations/" + conversationId + "/takeover");
    if (res.status === 201 || res.ok) { location.hash = "#ticket/" + res.data.id; return; }
    if (button) button.disabled = false;
    if (res.status === 409) {
      const who = nameOf(res.data.assignee) || "another agent";
      const link = res.data.ticket_id ? h("a", { href: "#ticket/" + res.data.ticket_id, class: "toast-link" }, "View ticket") : null;
      toast("Already taken over by " + who, "warn conflict", link);
      scheduleReload();
      return;
    }
    toast(res.data.error || "Take over failed", "error");
  }

  // ---- lists -------------------------------------------------------------------------
  // A list page is built once per navigation. Live events refresh only its rows, with the
  // search in force and down to the oldest row already shown, so neither what the agent is
  // typing nor the rows they loaded with "Load more" are lost.
  function listView(spec) {
    const view = { spec, route: state.route, q: state.searches.get(state.route) || "", shownQ: null,
      rows: [], next: null, seq: 0 };
    view.input = h("input", { type: "search", class: "search", "data-field": "search", value: view.q,
      placeholder: spec.placeholder, "aria-label": "Search " + spec.title.toLowerCase() });
    view.results = h("div", { class: "results" });
    view.more = h("button", { type: "button", "data-action": "load-more", hidden: true,
      onclick: () => loadList(view, "more") }, "Load more");
    let typing = null;
    view.input.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        view.q = view.input.value.trim();
        state.searches.set(view.route, view.q);
        loadList(view, "search");
      }, 300);
    });
    state.list = view;
    $view.replaceChildren(h("section", { class: "panel" },
      h("div", { class: "list-head" }, h("h1", {}, spec.title), view.input),
      view.results, h("div", { class: "list-more" }, view.more)));
    return loadList(view, "search");
  }

  // mode: "search" (first page), "more" (the next page, appended) or "refresh" (what is shown, again).
  async function loadList(view, mode) {
    const seq = ++view.seq;  // only the latest load of this page renders
    if (view.q !== view.shownQ) mode = "search";  // the rows shown are another search's: start again
    const until = mode === "refresh" && view.rows.length ? view.rows[view.rows.length - 1].id : null;
    let before = mode === "more" ? view.next : null;
    let rows = [];
    do {
      const params = new URLSearchParams(view.spec.params);
      if (view.q) params.set("q", view.q);
      if (before) params.set("before", before);
      const res = await api("GET", view.spec.path + "?" + params);
      if (seq !== view.seq || state.list !== view) return;
      if (!res.ok) { toast(res.data.error || "Could not load the list", "error"); return; }
      rows = rows.concat(list(res.data, view.spec.key));
      before = res.data.next_before || null;
    } while (before && until && before > until);
    view.rows = mode === "more" ? view.rows.concat(rows) : rows;
    view.next = before;
    view.shownQ = view.q;
    const shown = view.spec.sort ? view.rows.slice().sort(view.spec.sort) : view.rows;
    view.results.replaceChildren(shown.length
      ? h("table", { class: "rows" }, h("thead", {}, h("tr", {}, view.spec.columns.map((c) => h("th", {}, c)))),
        h("tbody", {}, shown.map(view.spec.row)))
      : h("p", { class: "empty" }, view.q ? "Nothing matches “" + view.q + "”." : view.spec.empty));
    view.more.hidden = !view.next;
  }

  const STATE_ORDER = { bot: 0, human: 1, ended: 2 };

  function viewConversations() {
    return listView({ title: "Conversations", path: "/api/v1/conversations", key: "conversations", params: {},
      placeholder: "Search customers or ticket subjects", empty: "No conversations yet.",
      columns: ["Customer", "Channel", "State", "Last activity", ""],
      sort: (a, b) => (STATE_ORDER[a.state] - STATE_ORDER[b.state]) || (b.id - a.id),
      row: (c) => {
        const ticketId = c.open_ticket_id || null;
        let action = null;
        if (c.state === "bot") action = h("button", { type: "button", class: "primary", "data-action": "takeover", onclick: (ev) => takeover(c.id, ev.target) }, "Take over");
        else if (c.state === "human" && ticketId) action = h("a", { class: "button", href: "#ticket/" + ticketId, "data-action": "view-ticket" }, "View ticket");
        return h("tr", { "data-conversation": c.id, "data-state": c.state },
          h("td", {}, h("strong", {}, contactName(c)), h("div", { class: "muted" }, (c.contact && c.contact.external_id) || "")),
          h("td", {}, badge(c.channel || "", "channel")),
          h("td", {}, stateBadge(c.state)),
          h("td", { class: "muted" }, when(c.last_activity_at || c.updated_at || c.created_at)),
          h("td", { class: "actions" }, action));
      } });
  }

  function viewTickets(which) {
    const live = "open,on_you,on_customer";
    const params = { mine: { assignee: "me", status: live }, unassigned: { assignee: "none", status: live } }[which] || {};
    const titles = { mine: "My tickets", unassigned: "Unassigned", all: "All tickets" };
    return listView({ title: titles[which] || "Tickets", path: "/api/v1/tickets", key: "tickets", params,
      placeholder: "Search subjects or customers", empty: "Nothing here.",
      columns: ["Subject", "Customer", "Channel", "Status", "Assignee", "Created", ""],
      row: (t) => h("tr", { "data-ticket": t.id, "data-status": t.status },
        h("td", {}, h("a", { href: "#ticket/" + t.id }, t.subject || ("Ticket #" + t.id))),
        h("td", {}, contactName(t)),
        h("td", {}, badge(t.channel || "", "channel")),
        h("td", {}, stateBadge(t.status)),
        h("td", {}, nameOf(t.assignee) || h("span", { class: "muted" }, "unassigned")),
        h("td", { class: "muted" }, when(t.created_at)),
        h("td", { class: "actions" }, !t.assignee && t.status !== "closed"
          ? h("button", { type: "button", class: "primary", "data-action": "claim", onclick: (ev) => claim(t.id, ev.target) }, "Assign to me")
          : h("a", { class: "button", href: "#ticket/" + t.id }, "Open"))) });
  }

  async function claim(ticketId, button) {
    if (button) button.disabled = true;
    const res = await api("POST", "/api/v1/tickets/" + ticketId + "/claim");
    if (res.ok) { location.hash = "#ticket/" + ticketId; return; }
    if (button) button.disabled = false;
    if (res.status === 409) toast("Already assigned to " + (nameOf(res.data.assignee) || "another agent"), "warn conflict");
    else toast(res.data.error || "Could not assign", "error");
    scheduleReload();
  }

  // ---- ticket page -------------------------------------------------------------------
  const ticketEls = {};

  async function viewTicket(id) {
    const seq = state.viewSeq = (state.viewSeq || 0) + 1;
    const res = await api("GET", "/api/v1/tickets/" + id);
    if (seq !== state.viewSeq) return;  // a newer render of the page started meanwhile
    if (!res.ok) { state.buffer = null; $view.replaceChildren(h("p", { class: "empty" }, res.data.error || "Ticket not found")); return; }
    const ticket = res.data;
    const conv = ticket.conversation || {};
    await loadAgents();
    if (seq !== state.viewSeq) return;
    state.ticket = ticket; state.conversation = conv; state.seen = new Set();

    ticketEls.subject = h("h1", { class: "subject" });
    ticketEls.meta = h("div", { class: "meta" });
    ticketEls.summary = h("p", { class: "summary", "data-field": "summary" });
    ticketEls.timeline = h("div", { class: "timeline", role: "log" });
    ticketEls.typing = h("div", { class: "typing", hidden: true }, "Customer is typing…");
    ticketEls.menu = h("div", { class: "menu", hidden: true, role: "menu" },
      h("button", { type: "button", role: "menuitem", "data-action": "allow-ai", onclick: () => act("allow-ai", "AI replies allowed: the ticket is closed") }, "Allow AI replies"),
      h("button", { type: "button", role: "menuitem", "data-action": "close", onclick: () => act("close", "Ticket closed") }, "Close"));
    const contact = conv.contact || {};
    const details = h("dl", { class: "details" },
      h("dt", {}, "Name"), h("dd", { "data-field": "contact-name" }, contact.name || "—"),
      h("dt", {}, "Email"), h("dd", {}, contact.email || "—"),
      h("dt", {}, "Channel"), h("dd", {}, ticket.channel || conv.channel || ""),
      h("dt", {}, "Language"), h("dd", {}, ticket.language || conv.language || "—"),
      h("dt", {}, "Conversation"), h("dd", {}, "#" + ticket.conversation_id));

    const text = h("textarea", { rows: 3, "data-field": "composer", placeholder: "Write a reply…", "aria-label": "Message" });
    text.value = state.drafts.get(ticket.id) || "";  // a re-render (reconnect, catch-up) keeps the draft
    let internal = false;
    let uploads = [];
    const tabReply = h("button", { type: "button", class: "tab active", "data-action": "mode-reply" }, "Reply");
    const tabNote = h("button", { type: "button", class: "tab", "data-action": "mode-note" }, "Internal note");
    const fileInput = h("input", { type: "file", multiple: true, hidden: true, "data-field": "attach-input" });
    const attachButton = h("button", { type: "button", "data-action": "attach", title: "Attach files (10 MB each)",
      onclick: () => fileInput.click() }, "Attach files…");
    const chips = h("div", { class: "uploads", "data-field": "uploads" });
    const composer = h("form", { class: "composer", "data-form": "composer" },
      h("div", { class: "tabs" }, tabReply, tabNote), text, chips,
      h("div", { class: "composer-actions" }, fileInput, attachButton,
        h("button", { type: "submit", class: "primary", "data-action": "send" }, "Send")));
    function showUploads() {
      chips.replaceChildren(...uploads.map((u) => h("span", { class: "upload-chip", "data-upload": u.id },
        u.filename, h("button", { type: "button", class: "icon", "aria-label": "Remove " + u.filename,
          onclick: () => { uploads = uploads.filter((x) => x !== u); showUploads(); } }, "×"))));
    }
    fileInput.addEventListener("change", async () => {
      for (const file of Array.from(fileInput.files || [])) {
        const uploaded = await uploadFile(file);
        if (uploaded) { uploads.push(uploaded); showUploads(); }
      }
      fileInput.value = "";
    });
    function mode(note) {
      internal = note;
      tabReply.classList.toggle("active", !note); tabNote.classList.toggle("active", note);
      composer.classList.toggle("note", note);
      attachButton.disabled = note; // notes carry no files
      chips.hidden = note;
      text.placeholder = note ? "Write an internal note (the customer never sees it)…" : "Write a reply…";
    }
    tabReply.addEventListener("click", () => mode(false));
    tabNote.addEventListener("click", () => mode(true));
    text.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) composer.requestSubmit(); });
    text.addEventListener("input", () => {
      state.drafts.set(ticket.id, text.value);
      const now = Date.now();
      if (!internal && now - state.typingSent > 2500) {
        state.typingSent = now;
        api("POST", "/api/v1/conversations/" + ticket.conversation_id + "/typing", { typing: true });
      }
    });
    composer.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const value = text.value.trim();
      const files = internal ? [] : uploads;
      if (!value && !files.length) return;
      const body = { text: value, internal: internal };
      if (files.length) body.attachments = files.map((u) => u.id);
      const res = await api("POST", "/api/v1/tickets/" + ticket.id + "/messages", body);
      if (!res.ok) { toast(res.data.error || "Not sent", "error"); return; }
      text.value = "";
      state.drafts.delete(ticket.id);
      if (files.length) { uploads = []; showUploads(); }
      state.typingSent = 0;
      const message = res.data.message || res.data;
      if (message && message.id) appendMessage(message);
    });
    ticketEls.composer = composer;

    $view.replaceChildren(h("div", { class: "ticket", "data-ticket": ticket.id },
      h("section", { class: "ticket-main" },
        h("div", { class: "ticket-head" }, h("div", {}, ticketEls.subject, ticketEls.meta),
          h("div", { class: "ticket-actions" },
            h("button", { type: "button", class: "primary", "data-action": "claim-here", onclick: (ev) => claim(ticket.id, ev.target) }, "Assign to me"),
            h("button", { type: "button", "data-action": "transfer", onclick: () => transferDialog(ticket) }, "Transfer"),
            h("div", { class: "menu-wrap" },
              h("button", { type: "button", class: "icon", "aria-haspopup": "menu", "aria-label": "More actions", "data-action": "menu",
                onclick: () => { ticketEls.menu.hidden = !ticketEls.menu.hidden; } }, "⋯"),
              ticketEls.menu))),
        ticketEls.timeline, ticketEls.typing, composer),
      h("aside", { class: "ticket-side" },
        h("section", { class: "card" }, h("h2", {}, "AI summary"), ticketEls.summary),
        h("section", { class: "card" }, h("h2", {}, "Customer"), details))));
    updateTicket(ticket);
    renderTimeline(conv);
    const buffered = state.buffer || [];
    state.buffer = null;
    for (const e of buffered) onEvent(e);
  }

  async function loadAgents() {
    if (state.agents) return state.agents;
    const res = await api("GET", "/api/v1/agents");
    state.agents = list(res.data, "agents");
    return state.agents;
  }

  function agentName(id) {
    const agent = (state.agents || []).find((a) => a.id === id);
    return agent ? nameOf(agent) : "An agent";
  }

  function updateTicket(t) {
    state.ticket = Object.assign(state.ticket || {}, t);
    const ticket = state.ticket;
    ticketEls.subject.textContent = ticket.subject || ("Ticket #" + ticket.id);
    ticketEls.meta.replaceChildren(stateBadge(ticket.status), " ",
      h("span", { "data-field": "assignee" }, ticket.assignee ? "Assigned to " + nameOf(ticket.assignee) : "Unassigned"),
      " · #" + ticket.id + " · " + when(ticket.created_at));
    ticketEls.summary.textContent = ticket.summary || "The AI summary appears here when it is ready…";
    ticketEls.summary.classList.toggle("pending", !ticket.summary);
    const closed = ticket.status === "closed";
    ticketEls.composer.hidden = closed;
    for (const b of document.querySelectorAll(".ticket-actions button")) b.disabled = closed;
    const claimHere = document.querySelector("[data-action=claim-here]");
    if (claimHere) claimHere.hidden = closed || !!ticket.assignee;
  }

  function renderTimeline(data) {
    ticketEls.timeline.replaceChildren();
    const messages = list(data.messages, "messages").map((m) => ({ at: m.created_at, m }));
    const events = list(data.events, "events").filter((e) => e && e.kind).map((e) => ({ at: e.created_at, e }));
    const items = messages.concat(events).sort((a, b) => new Date(a.at) - new Date(b.at) || ((a.m ? a.m.id : 0) - (b.m ? b.m.id : 0)));
    for (const item of items) {
      if (item.m) appendMessage(item.m, true); else appendEvent(item.e);
    }
    scrollTimeline();
  }

  function scrollTimeline() { ticketEls.timeline.scrollTop = ticketEls.timeline.scrollHeight; }

  function authorOf(m) { return m.author_kind || m.author || (m.direction === "incoming" ? "customer" : "system"); }

  // A person's reply written in the provider's own app, not in handoff (see handoff/changes.py).
  const OUTSIDE_APPS = { instagram_app: "Replied from the Instagram app", messenger_app: "Replied from outside handoff" };

  function appendMessage(m, bulk) {
    if (!ticketEls.timeline || (m.id && state.seen.has(m.id))) return;
    if (m.id) state.seen.add(m.id);
    const author = authorOf(m);
    let el;
    if (m.direction === "activity" || m.kind === "separator") {
      el = h("div", { class: "separator", role: "separator", "data-id": m.id }, h("span", {}, m.text || m.notice || ""));
    } else if (m.notice || author === "system") {
      el = h("div", { class: "notice", "data-id": m.id, "data-notice": m.notice || "" }, m.text || "",
        h("time", {}, when(m.created_at)),
        m.delivery_status === "skipped" ? badge("not sent on this channel", "skipped") : null);
    } else {
      const who = author === "customer" ? contactName(state.conversation) : author === "bot" ? "AI assistant"
        : (m.agent && m.agent.name) || (m.agent ? agentName(m.agent.id) : OUTSIDE_APPS[m.origin] || "Agent");
      el = h("div", { class: "msg " + author + (m.private ? " private" : ""), "data-id": m.id, "data-author": author },
        h("div", { class: "who" }, who, m.private ? badge("internal note", "note") : null, h("time", {}, when(m.created_at)),
          m.delivery_status === "failed" ? badge("failed", "failed") : null),
        m.deleted ? h("div", { class: "text deleted" }, "This message was deleted")
          : m.text || !(m.attachments || []).length ? h("div", { class: "text" }, m.text || "") : null,
        m.edited_at && !m.deleted ? editedMarker(m) : null,
        (m.attachments || []).map(attachmentLink));
    }
    ticketEls.timeline.append(el);
    if (author === "customer") ticketEls.typing.hidden = true;
    if (!bulk) scrollTimeline();
  }

  // "edited", with the earlier texts on expand (and on hover).
  function editedMarker(m) {
    const earlier = (m.revisions || []).map((r) => r.text);
    return h("details", { class: "edited", "data-field": "edited", title: earlier.join("\n") },
      h("summary", {}, "edited"), earlier.map((text) => h("div", { class: "revision" }, text)));
  }

  async function uploadFile(file) {
    const form = new FormData();
    form.append("file", file, file.name);
    const res = await fetch("/api/v1/uploads", { method: "POST", credentials: "same-origin", body: form });
    let data = {};
    try { data = await res.json(); } catch (e) { data = {}; }
    if (!res.ok) { toast(file.name + ": " + (data.error || "upload failed"), "error"); return null; }
    return data;
  }

  // Our own files (/media/, older /widget/files/) load from this server, whatever HANDOFF_PUBLIC_URL says.
  function attachmentUrl(a) {
    try {
      const u = new URL(a.url, location.href);
      if (u.pathname.startsWith("/media/") || u.pathname.startsWith("/widget/files/")) return u.pathname;
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (e) { return null; }
  }

  function attachmentLink(a) {
    const url = attachmentUrl(a);
    if (!url) return null;
    const name = a.filename || "attachment";
    const image = /^image\/(png|jpeg|gif|webp)$/.test(a.content_type || "");
    return h("a", { class: "attachment" + (image ? " thumb" : ""), href: url, target: "_blank", rel: "noopener noreferrer",
      "data-attachment": name },
      image ? h("img", { src: url, alt: name, loading: "lazy" }) : "📎 " + name + (a.size ? " (" + sizeText(a.size) + ")" : ""));
  }

  function sizeText(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return Math.round(bytes / 1024) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function appendEvent(e) {
    const data = e.data || {};
    const agent = e.agent_id ? agentName(e.agent_id) : "The system";
    const labels = {
      takeover: agent + " took over", escalated: "Escalated to a person" + (data.reason ? ": " + data.reason : ""),
      claimed: agent + " assigned the ticket to themselves",
      transferred: agent + " transferred the ticket to " + (nameOf(data.to_agent) || "a colleague"),
      ai_resumed: agent + " allowed AI replies", closed: agent + " closed the ticket",
      delivery_failed: "A message could not be delivered" + (data.reason ? ": " + data.reason : ""),
      ended: "The conversation ended" + (data.reason ? " (" + data.reason + ")" : ""),
      bot_reply_dropped: "A bot reply was dropped: " + (data.reason || "the conversation changed owner"),
      "message.edited": "The customer edited a message", "message.deleted": "The customer deleted a message",
      outside_reply: "A person replied from outside handoff",
    };
    const text = labels[e.kind] || e.kind.replace(/_/g, " ");
    ticketEls.timeline.append(h("div", { class: "event", "data-event": e.kind }, text, h("time", {}, when(e.created_at))));
  }

  async function act(action, done) {
    ticketEls.menu.hidden = true;
    const res = await api("POST", "/api/v1/tickets/" + state.ticket.id + "/" + action);
    if (!res.ok) { toast(res.data.error || "Failed", "error"); return; }
    toast(done);
    updateTicket(res.data.ticket || res.data);
  }

  async function transferDialog(ticket) {
    await loadAgents();
    const select = h("select", { "data-field": "transfer-agent", required: true },
      state.agents.filter((a) => !state.me || a.id !== state.me.id).map((a) => h("option", { value: a.id }, nameOf(a))));
    const note = h("textarea", { rows: 3, "data-field": "transfer-note", placeholder: "A note for your colleague (internal)" });
    const dialog = h("dialog", { class: "card dialog" },
      h("form", { method: "dialog", "data-form": "transfer" },
        h("h2", {}, "Transfer ticket"),
        h("label", {}, "To", select), h("label", {}, "Note", note),
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
          h("button", { type: "submit", class: "primary", "data-action": "transfer-confirm" }, "Transfer"))));
    dialog.addEventListener("close", () => dialog.remove());
    dialog.querySelector("form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const res = await api("POST", "/api/v1/tickets/" + ticket.id + "/transfer", { agent_id: parseInt(select.value, 10), note: note.value });
      if (!res.ok) { toast(res.data.error || "Transfer failed", "error"); return; }
      dialog.close();
      toast("Transferred to " + select.selectedOptions[0].textContent);
      updateTicket(res.data.ticket || res.data);
      reloadTimeline();
    });
    document.body.append(dialog);
    dialog.showModal();
  }

  async function reloadTimeline() {
    if (!state.ticket) return;
    const res = await api("GET", "/api/v1/conversations/" + state.ticket.conversation_id);
    if (res.ok && state.ticket) { state.seen = new Set(); state.conversation = res.data; renderTimeline(res.data); }
  }

  // ---- account -----------------------------------------------------------------------
  function viewAccount() {
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
    $view.replaceChildren(h("section", { class: "panel narrow" }, form));
  }

  // ---- live stream -------------------------------------------------------------------
  function connectStream() {
    const url = new URL("/api/v1/stream", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url.href);
    state.stream = ws;
    ws.onopen = () => {
      document.querySelector(".live").classList.add("on");
      if (state.streamBackoff > 500) refresh(); // catch up on what happened while offline
      state.streamBackoff = 500;
    };
    ws.onmessage = (ev) => { let e; try { e = JSON.parse(ev.data); } catch (x) { return; } onEvent(e); };
    ws.onclose = () => {
      document.querySelector(".live").classList.remove("on");
      if (state.stream !== ws || !state.me) return;
      setTimeout(connectStream, state.streamBackoff);
      state.streamBackoff = Math.min(state.streamBackoff * 2, 10000);
    };
  }

  function onEvent(e) {
    if (state.buffer) { state.buffer.push(e); return; }
    const kind = e.kind || e.type;
    const data = e.data || e;
    const t = state.ticket;
    if (t) {
      if (kind === "message.created" && data.conversation_id === t.conversation_id && data.message) appendMessage(data.message);
      else if (kind === "timeline.event" && data.conversation_id === t.conversation_id && data.event) {
        appendEvent(Object.assign({ created_at: new Date().toISOString() }, data.event)); scrollTimeline();
      } else if (kind === "message.updated" && data.conversation_id === t.conversation_id) reloadTimeline();
      else if (kind === "stream.lagged") viewTicket(t.id);
      else if (kind === "conversation.updated" && data.conversation_id === t.conversation_id && data.contact) {
        state.conversation.contact = Object.assign({}, state.conversation.contact, data.contact);
        document.querySelector("[data-field=contact-name]").textContent = data.contact.name || "—";
      }
      else if ((kind === "ticket.updated" || kind === "ticket.summary") && data.ticket && data.ticket.id === t.id) updateTicket(data.ticket);
      else if (kind === "typing" && data.conversation_id === t.conversation_id && data.who === "customer") {
        ticketEls.typing.hidden = !data.typing;
        clearTimeout(state.customerTypingTimer);
        if (data.typing) state.customerTypingTimer = setTimeout(() => { ticketEls.typing.hidden = true; }, 6000);
      }
      return;
    }
    if (kind === "typing" || kind === "stream.ready" || kind === "timeline.event" || kind === "message.created") return;
    if (kind === "ticket.created" && data.ticket && !data.ticket.assignee) toast("New unassigned ticket: " + (data.ticket.subject || "#" + data.ticket.id));
    scheduleReload();
  }

  // ---- start -------------------------------------------------------------------------
  document.querySelector("[data-action=logout]").addEventListener("click", async () => {
    await api("POST", "/desk/logout");
    state.me = null;
    if (state.stream) state.stream.close();
    showLogin();
  });
  document.addEventListener("click", (ev) => {
    if (ticketEls.menu && !ev.target.closest(".menu-wrap")) ticketEls.menu.hidden = true;
  });

  function start() {
    $topbar.hidden = false;
    document.querySelector(".me-name").textContent = state.me.name;
    if (!state.stream || state.stream.readyState > 1) connectStream();
    if (!state.routing) { state.routing = true; window.addEventListener("hashchange", route); }
    route();
  }

  (async function boot() {
    const res = await api("GET", "/desk/me");
    if (res.ok) { state.me = res.data.agent; start(); } else showLogin();
  })();
})();
