// The desk's entry point (loaded by desk.html as a module): sign-in check, hash routing
// (#conversations, #conversation/{id}, #tickets/mine|unassigned|all, #ticket/{id}, #account,
// #notifications: your @mentions, #canned: canned responses), and
// live events dispatched to the page shown and to the shift's notices (notify.js). A single-page app over the REST API (/api/v1) and its stream.
// No component library, deliberately: under the CSP (script-src 'self', no build step) a bare
// import such as "preact" needs an inline import map, which the CSP refuses; views use h().
import { KIND } from "./kinds.js";
import { state, ticketEls } from "./state.js";
import { api, onUnauthorized } from "./api.js";
import { setRefresher, scheduleReload } from "./reload.js";
import { connectStream } from "./stream.js";
import { loadList } from "./views/list.js";
import { viewConversations } from "./views/conversations.js";
import { onConversationEvent, viewConversation } from "./views/conversation.js";
import { notificationToggle, onShiftEvent, refreshUnread } from "./notify.js";
import { viewTickets } from "./views/tickets.js";
import { onTicketEvent, viewTicket } from "./views/ticket.js";
import { viewAccount } from "./views/account.js";
import { onMentionEvent, readForTicket, refreshMentions, viewNotifications } from "./views/notifications.js";
import { viewCanned } from "./views/canned.js";
import { showLogin } from "./views/signin.js";
import { onPresence } from "./views/transfer.js";
import { onOwnPresence, presenceToggle, refreshPresence } from "./presence.js";

function route() {
  const hash = location.hash.replace(/^#/, "") || "conversations";
  state.route = hash;
  clearTimeout(state.reloadTimer);  // a list reload scheduled before navigating must not re-render this page
  state.ticket = null; state.conversation = null; state.seen = new Set(); state.list = null;
  // Live events that arrive while a ticket page loads are kept and applied once it has.
  state.buffer = hash.startsWith("ticket/") ? [] : null;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", hash.startsWith(a.dataset.view));
  if (hash === "conversations") return viewConversations();
  if (hash.startsWith("conversation/")) return viewConversation(parseInt(hash.split("/")[1], 10));
  if (hash.startsWith("tickets/")) return viewTickets(hash.split("/")[1]);
  if (hash.startsWith("ticket/")) { readForTicket(parseInt(hash.split("/")[1], 10)); return viewTicket(parseInt(hash.split("/")[1], 10)); }
  if (hash === "account") return viewAccount();
  if (hash === "notifications") return viewNotifications();
  if (hash === "canned") return viewCanned();
  return viewConversations();
}

// Show what changed on this page: a list reloads its rows only, any other page renders again.
function refresh() {
  refreshUnread();
  refreshMentions();
  if (state.list && state.list.route === state.route) return loadList(state.list, "refresh");
  return route();
}

function onEvent(e) {
  if ((e.kind || e.type) === KIND.AGENT_PRESENCE) { onPresence(e); onOwnPresence(e); return; }
  if (e.kind === KIND.STREAM_READY) refreshPresence();
  onShiftEvent(e);
  if (e.kind === KIND.MENTION) { onMentionEvent(e); return; }
  if (state.buffer) { state.buffer.push(e); return; }
  if (state.ticket) { onTicketEvent(e); return; }
  if (onConversationEvent(e)) return;
  const kind = e.kind || e.type;
  if (kind === KIND.TYPING || kind === KIND.STREAM_READY || kind === KIND.TIMELINE_EVENT) return;
  scheduleReload();  // a new message moves its row to the top and changes its last message
}

function start() {
  document.querySelector(".topbar").hidden = false;
  document.querySelector(".me-name").textContent = state.me.name;
  const slot = document.querySelector("[data-slot=notifications]");
  if (slot && !slot.firstChild) slot.append(notificationToggle());
  const presenceSlot = document.querySelector("[data-slot=presence]");
  if (presenceSlot && !presenceSlot.firstChild) presenceSlot.append(presenceToggle());
  refreshUnread();
  refreshMentions();
  if (!state.stream || state.stream.readyState > 1) connectStream(onEvent, refresh);
  if (!state.routing) { state.routing = true; window.addEventListener("hashchange", route); }
  route();
}

setRefresher(refresh);
onUnauthorized(() => showLogin(start));
document.querySelector("[data-action=logout]").addEventListener("click", async () => {
  await api("POST", "/desk/logout");
  state.me = null;
  if (state.stream) state.stream.close();
  showLogin(start);
});
document.addEventListener("click", (ev) => {
  if (ticketEls.menu && !ev.target.closest(".menu-wrap")) ticketEls.menu.hidden = true;
});

const res = await api("GET", "/desk/me");
if (res.ok) { state.me = res.data.agent; start(); } else showLogin(start);
