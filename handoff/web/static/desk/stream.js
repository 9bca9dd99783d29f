// The desk's live stream: a WebSocket on /api/v1/stream that reconnects after 0.5 s, doubling
// up to 10 s, while an agent is signed in. The ● in the top bar shows whether it is open.
import { state } from "./state.js";

/**
 * Open the stream: `onEvent(e)` gets each JSON event ({kind, data…}); `onReconnect()` is called
 * when it opens again after a drop, so the page can catch up on what it missed.
 */
export function connectStream(onEvent, onReconnect) {
  const url = new URL("/api/v1/stream", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url.href);
  state.stream = ws;
  ws.onopen = () => {
    document.querySelector(".live").classList.add("on");
    if (state.streamBackoff > 500) onReconnect();
    state.streamBackoff = 500;
  };
  ws.onmessage = (ev) => {
    let e;
    try { e = JSON.parse(ev.data); } catch { return; }
    onEvent(e);
  };
  ws.onclose = () => {
    document.querySelector(".live").classList.remove("on");
    if (state.stream !== ws || !state.me) return;
    setTimeout(() => connectStream(onEvent, onReconnect), state.streamBackoff);
    state.streamBackoff = Math.min(state.streamBackoff * 2, 10000);
  };
}
