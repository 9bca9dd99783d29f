// A searchable, paged table page (conversations, tickets). It is built once per navigation;
// live events refresh only its rows, with the search in force and down to the oldest row
// already shown, so neither what the agent is typing nor the rows loaded with "Load more" are lost.
import { state } from "../state.js";
import { api } from "../api.js";
import { h, toast } from "../dom.js";
import { list } from "../format.js";
import { filterParams } from "../labeling.js";

const keptFilters = new Map();  // route -> the list's filter values, kept across navigation

/**
 * Show a list page. `spec`: {title, path, key (the answer's array field), params (query),
 * placeholder, empty (text when there are no rows), columns (header texts), row(item) → <tr>,
 * sort?(a, b), filters?: [{name (query parameter), label, any (the "no filter" option's text),
 * options() → Promise of [[value, text]]}]}. The API pages with `before` / `next_before` (a cursor)
 * and searches with `q`; filters are kept per page across navigation.
 */
export function listView(spec) {
  const view = { spec, route: state.route, q: state.searches.get(state.route) || "", shownQ: null,
    rows: [], next: null, seq: 0, filters: Object.assign({}, keptFilters.get(state.route)) };
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
  document.getElementById("view").replaceChildren(h("section", { class: "panel" },
    h("div", { class: "list-head" }, h("h1", {}, spec.title),
      spec.filters ? h("div", { class: "list-filters" }, spec.filters.map((f) => filterSelect(view, f))) : null, view.input),
    view.results, h("div", { class: "list-more" }, view.more)));
  return loadList(view, "search");
}

/** Load a list page's rows. mode: "search" (first page), "more" (the next page, appended) or "refresh" (what is shown, again). */
export async function loadList(view, mode) {
  const seq = ++view.seq;  // only the latest load of this page renders
  if (shownKey(view) !== view.shownQ) mode = "search";  // the rows shown are another search's: start again
  // A refresh loads as many rows as were shown: the order (last activity) moves, so pages are
  // counted, not compared by id.
  const until = mode === "refresh" ? view.rows.length : 0;
  let before = mode === "more" ? view.next : null;
  let rows = [];
  do {
    const params = new URLSearchParams(Object.assign({}, view.spec.params, filterParams(view.filters)));
    if (view.q) params.set("q", view.q);
    if (before) params.set("before", before);
    const res = await api("GET", view.spec.path + "?" + params);
    if (seq !== view.seq || state.list !== view) return;
    if (!res.ok) { toast(res.data.error || "Could not load the list", "error"); return; }
    rows = rows.concat(list(res.data, view.spec.key));
    before = res.data.next_before || null;
  } while (before && rows.length < until);
  view.rows = mode === "more" ? view.rows.concat(rows) : rows;
  view.next = before;
  view.shownQ = shownKey(view);
  const shown = view.spec.sort ? view.rows.slice().sort(view.spec.sort) : view.rows;
  view.results.replaceChildren(shown.length
    ? h("table", { class: "rows" }, h("thead", {}, h("tr", {}, view.spec.columns.map((c) => h("th", {}, c)))),
      h("tbody", {}, shown.map(view.spec.row)))
    : h("p", { class: "empty" }, view.q ? "Nothing matches “" + view.q + "”."
      : Object.keys(filterParams(view.filters)).length ? "Nothing matches these filters." : view.spec.empty));
  view.more.hidden = !view.next;
}

// What the rows shown were loaded for: the search text and the filters.
function shownKey(view) { return view.q + "\u0000" + JSON.stringify(filterParams(view.filters)); }

// A filter's <select>: "any" first, then its options (loaded once); a change reloads the list.
function filterSelect(view, f) {
  const select = h("select", { "data-filter": f.name, "aria-label": f.label }, h("option", { value: "" }, f.any));
  f.options().then((options) => {
    select.append(...options.map(([value, text]) => h("option", { value }, text)));
    select.value = view.filters[f.name] || "";
  });
  select.addEventListener("change", () => {
    view.filters[f.name] = select.value;
    keptFilters.set(view.route, Object.assign({}, view.filters));
    loadList(view, "search");
  });
  return select;
}
