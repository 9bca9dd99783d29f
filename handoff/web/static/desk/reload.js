// Re-showing the current page after a change: scheduleReload() debounces live events and
// conflicts into one refresh 250 ms later. main.js supplies the refresh (it knows the views).
import { state } from "./state.js";

let refresher = () => {};

/** Set what a reload runs: main.js's refresh(). */
export function setRefresher(fn) { refresher = fn; }

/** Refresh the page in 250 ms (once for a burst of calls); never on a ticket page, which updates itself. */
export function scheduleReload() {
  if (state.route.startsWith("ticket/")) return;
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(() => refresher(), 250);
}
