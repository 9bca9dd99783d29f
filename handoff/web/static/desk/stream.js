// The desk's live stream: a WebSocket on /api/v1/stream that reconnects after 0.5 s, doubling
// up to 10 s, while an agent is signed in. The ● in the top bar shows whether it is open.
// A reconnect resumes after the last logged event seen (`?after=<seq>`): the server replays
// what was missed, or sends stream.resync when it cannot, and the page then reloads.
import { KIND } from "./kinds.js";
import { state } from "./state.js";

let lastSeq = null;  // the seq of the last logged event seen; null before the first stream.ready

/** The stream's ws(s):// URL for a page at `href`, resuming after `seq` when there is one. */
export function streamUrl(href, seq) {
  const url = new URL("/api/v1/stream", href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (seq !== null && seq !== undefined) url.searchParams.set("after", String(seq));
  return url.href;
}

/**
 * Where the stream stands after event `e`, from `seq`: {seq, reload}. stream.ready starts the
 * count (a resumed stream keeps its own), a logged event moves it on, stream.resync moves it
 * to the server's seq and asks for a reload of the page.
 */
export function advance(seq, e) {
  if (e.kind === KIND.STREAM_RESYNC) return { seq: typeof e.seq === "number" ? e.seq : seq, reload: true };
  if (e.kind === KIND.STREAM_READY) return { seq: seq === null && typeof e.seq === "number" ? e.seq : seq, reload: false };
  if (typeof e.seq === "number" && (seq === null || e.seq > seq)) return { seq: e.seq, reload: false };
  return { seq, reload: false };
}

/**
 * Open the stream: `onEvent(e)` gets each JSON event ({kind, data…}); `onReconnect()` is called
 * when the page must catch up by reloading (the stream could not replay what it missed).
 */
export function connectStream(onEvent, onReconnect) {
  const ws = new WebSocket(streamUrl(location.href, lastSeq));
  state.stream = ws;
  ws.onopen = () => {
    document.querySelector(".live").classList.add("on");
    if (state.streamBackoff > 500 && lastSeq === null) onReconnect();
    state.streamBackoff = 500;
  };
  ws.onmessage = (ev) => {
    let e;
    try { e = JSON.parse(ev.data); } catch { return; }
    const step = advance(lastSeq, e);
    lastSeq = step.seq;
    if (step.reload) onReconnect(); else onEvent(e);
  };
  ws.onclose = () => {
    document.querySelector(".live").classList.remove("on");
    if (state.stream !== ws || !state.me) return;
    setTimeout(() => connectStream(onEvent, onReconnect), state.streamBackoff);
    state.streamBackoff = Math.min(state.streamBackoff * 2, 10000);
  };
}
