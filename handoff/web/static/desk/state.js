// The desk's one shared state: who is signed in, the page shown and what it has rendered.
// Every module reads and writes this object; nothing else is global.
export const state = {
  me: null,                  // the signed-in agent ({id, name, email, has_password}) or null
  route: "",                 // the location hash without "#", e.g. "ticket/12"
  ticket: null,              // the ticket page's ticket, null on other pages
  conversation: null,        // the ticket page's conversation
  seen: new Set(),           // message ids already on the ticket page's timeline
  agents: null,              // the agent directory, loaded once
  buffer: null,              // live events kept while a ticket page loads, else null
  stream: null,              // the live WebSocket
  streamBackoff: 500,        // ms before the next reconnect
  reloadTimer: null,
  typingSent: 0,             // Date.now() of the last "agent is typing" sent
  customerTypingTimer: null,
  viewSeq: 0,                // only the latest ticket-page render may finish
  list: null,                // the list page shown (see views/list.js), else null
  searches: new Map(),       // route -> search text, kept across navigation
  routing: false,
};

// The ticket page's live elements (subject, meta, summary, timeline, typing, menu, composer),
// set when the page renders; the timeline and live events update them in place.
export const ticketEls = {};
