// obshub studio: a read-only viewer over the local sqlite store.
// Every value from the store reaches the page through textContent or an attribute set
// with setAttribute on a fixed name: nothing recorded is ever parsed as HTML.
"use strict";

const FOLD = 2000; // characters shown before a value is folded
const POLL_MS = 1500; // live updates: how often the store's change counter is read

const app = document.getElementById("app");
let lastChanges = null;
let refreshView = null; // re-renders the current view when the store changed

// -- small DOM helpers -------------------------------------------------------------------

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = String(value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "style") Object.assign(el.style, value);
      else el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

async function api(path) {
  const response = await fetch("/api/" + path, { cache: "no-store" });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function fmtTime(ns) {
  if (ns === null || ns === undefined) return "";
  return new Date(ns / 1e6).toLocaleString();
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1) return ms.toFixed(2) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
}

function fmtCost(value) {
  if (!value) return "";
  return "$" + (value < 0.01 ? value.toFixed(5) : value.toFixed(4));
}

function fmtInt(value) {
  return value ? Number(value).toLocaleString() : "";
}

// -- values: folded text, pretty JSON, chat messages ----------------------------------------

function folded(text, cls) {
  const pre = h("pre", { class: cls || "value" });
  if (text.length <= FOLD) {
    pre.textContent = text;
    return pre;
  }
  pre.textContent = text.slice(0, FOLD) + "…";
  const button = h("button", {
    class: "fold",
    "data-testid": "unfold",
    text: `show all (${text.length.toLocaleString()} characters)`,
    onclick: () => {
      pre.textContent = text;
      button.remove();
    },
  });
  return h("div", null, pre, button);
}

function asText(value) {
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

function messagesOf(value) {
  let list = value;
  if (list && !Array.isArray(list) && typeof list === "object" && Array.isArray(list.messages)) {
    list = list.messages;
  }
  if (list && !Array.isArray(list) && typeof list === "object" && typeof list.role === "string") {
    list = [list];
  }
  if (!Array.isArray(list) || list.length === 0) return null;
  const ok = list.every((m) => m && typeof m === "object" && typeof m.role === "string");
  return ok ? list : null;
}

function contentText(content) {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (part && typeof part.text === "string" ? part.text : asText(part)))
      .join("\n");
  }
  return asText(content);
}

function renderChat(messages) {
  const box = h("div", { class: "chat", "data-testid": "chat" });
  for (const m of messages) {
    const role = String(m.role);
    const safeRole = /^[a-z_]+$/.test(role) ? role : "other";
    const msg = h("div", { class: "msg " + safeRole, "data-role": safeRole });
    msg.append(h("span", { class: "role", text: role }));
    let text = contentText(m.content);
    if (m.tool_calls) text += (text ? "\n" : "") + asText(m.tool_calls);
    if (text.length > FOLD) msg.append(folded(text));
    else msg.append(document.createTextNode(text));
    box.append(msg);
  }
  return box;
}

function renderValue(value) {
  if (value === null || value === undefined) return h("span", { class: "muted", text: "—" });
  const messages = messagesOf(value);
  if (messages) return renderChat(messages);
  return folded(asText(value));
}

function isEmpty(value) {
  if (value === null || value === undefined) return true;
  if (typeof value === "object" && Object.keys(value).length === 0) return true;
  return false;
}

// -- navigation -------------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent),
           params: new URLSearchParams(query || "") };
}

function markNav(name) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.getAttribute("data-nav") === name);
  }
}

async function route() {
  const { parts, params } = parseHash();
  const target = location.hash;
  refreshView = null;
  app.removeAttribute("data-route");
  try {
    if (parts[0] === "trace" && parts[1]) {
      markNav("traces");
      await showTrace(parts[1], params.get("span"));
    } else if (parts[0] === "sessions") {
      markNav("sessions");
      await showSessions();
    } else if (parts[0] === "session" && parts[1]) {
      markNav("sessions");
      await showSession(parts[1]);
    } else if (parts[0] === "dashboard") {
      markNav("dashboard");
      await showDashboard();
    } else {
      markNav("traces");
      await showTraces(params);
    }
  } catch (err) {
    clear(app);
    app.append(h("div", { class: "empty", text: "Error: " + err.message }));
  }
  // Tells a watcher (and the browser tests) that the view for this address is on screen.
  if (location.hash === target) app.setAttribute("data-route", target);
}

// -- traces list ------------------------------------------------------------------------------

const FILTERS = [
  ["q", "Search input/output", "text"],
  ["name", "Name", "text"],
  ["session", "Session", "text"],
  ["user", "User", "text"],
  ["tag", "Tag", "text"],
  ["model", "Model", "text"],
  ["since", "From", "datetime-local"],
  ["until", "To", "datetime-local"],
];

function toSeconds(local) {
  const ms = Date.parse(local);
  return Number.isNaN(ms) ? "" : String(ms / 1000);
}

function fromSeconds(seconds) {
  if (!seconds) return "";
  const d = new Date(Number(seconds) * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function traceRow(t) {
  const tr = h("tr", {
    class: "row" + (t.error ? " err" : ""),
    "data-testid": "trace-row",
    "data-trace-id": t.trace_id,
    onclick: () => { location.hash = "#/trace/" + encodeURIComponent(t.trace_id); },
  },
    h("td", { text: fmtTime(t.start_ns) }),
    h("td", { class: "name" }, h("a", { href: "#/trace/" + encodeURIComponent(t.trace_id),
                                         text: t.name || "(unnamed)" }),
      t.level !== "default" ? h("span", { class: "badge " + t.level, text: t.level }) : null),
    h("td", { class: "num", text: fmtMs(t.duration_ms) }),
    h("td", { class: "num", text: fmtInt(t.tokens) }),
    h("td", { class: "num", text: fmtCost(t.cost) }),
    h("td", { text: t.models.join(", ") }),
    h("td", null, t.session_id ? h("a", { href: "#/session/" + encodeURIComponent(t.session_id),
                                           text: t.session_id,
                                           onclick: (e) => e.stopPropagation() }) : ""),
    h("td", { text: t.user_id || "" }),
    h("td", null, t.tags.map((tag) => h("span", { class: "tag", text: tag }))),
  );
  return tr;
}

async function showTraces(params) {
  const form = h("form", { class: "filters", "data-testid": "filters" });
  const inputs = {};
  for (const [key, label, type] of FILTERS) {
    const value = type === "datetime-local" ? fromSeconds(params.get(key)) : params.get(key) || "";
    inputs[key] = h("input", { type, name: key, value, "data-testid": "filter-" + key });
    form.append(h("label", null, label, inputs[key]));
  }
  const level = h("select", { name: "level", "data-testid": "filter-level" },
    ["", "debug", "default", "warning", "error"].map((v) =>
      h("option", { value: v, text: v || "any", selected: params.get("level") === v })));
  form.append(h("label", null, "Level", level));
  const errors = h("input", { type: "checkbox", name: "error", "data-testid": "filter-error",
                              checked: params.get("error") === "1" });
  form.append(h("label", null, "Errors only", errors));
  const sort = h("select", { name: "sort", "data-testid": "sort" },
    [["start", "Newest"], ["latency", "Latency"], ["tokens", "Tokens"], ["cost", "Cost"]].map(
      ([v, t]) => h("option", { value: v, text: t, selected: (params.get("sort") || "start") === v })));
  const order = h("select", { name: "order", "data-testid": "order" },
    [["desc", "↓ desc"], ["asc", "↑ asc"]].map(([v, t]) =>
      h("option", { value: v, text: t, selected: (params.get("order") || "desc") === v })));
  form.append(h("label", null, "Sort", sort), h("label", null, "Order", order));
  form.append(h("button", { class: "primary", type: "submit", text: "Apply",
                            "data-testid": "apply" }));
  form.append(h("button", { type: "button", text: "Clear",
                            onclick: () => { location.hash = "#/"; } }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [key, , type] of FILTERS) {
      const v = inputs[key].value.trim();
      if (v) q.set(key, type === "datetime-local" ? toSeconds(v) : v);
    }
    if (level.value) q.set("level", level.value);
    if (errors.checked) q.set("error", "1");
    if (sort.value !== "start") q.set("sort", sort.value);
    if (order.value !== "desc") q.set("order", order.value);
    const target = "#/traces?" + q.toString();
    if (location.hash === target) route();
    else location.hash = target;
  });

  const body = h("tbody", { "data-testid": "trace-rows" });
  const table = h("table", { "data-testid": "traces" },
    h("thead", null, h("tr", null, ["Started", "Name", "Latency", "Tokens", "Cost", "Models",
                                    "Session", "User", "Tags"].map((c, i) =>
      h("th", { class: i >= 2 && i <= 4 ? "num" : null, text: c })))),
    body);
  const more = h("div", { class: "more" });
  const status = h("p", { class: "muted", "data-testid": "list-status" });

  const query = new URLSearchParams(params);
  query.set("limit", "50");
  let loaded = 0;

  async function load(cursor) {
    const q = new URLSearchParams(query);
    if (cursor) q.set("cursor", cursor);
    const page = await api("traces?" + q.toString());
    for (const t of page.traces) body.append(traceRow(t));
    loaded += page.traces.length;
    clear(more);
    if (page.next_cursor) {
      more.append(h("button", { text: "Load more", "data-testid": "load-more",
                                onclick: () => load(page.next_cursor) }));
    }
    status.textContent = loaded ? `${loaded} trace(s) shown` : "";
    if (!loaded) {
      clear(more);
      more.append(h("div", { class: "empty", "data-testid": "no-traces",
        text: "No traces match. Record some (obshub demo) — they appear here as they arrive." }));
    }
  }

  await load(null);
  clear(app);
  app.append(form, table, more, status);
  refreshView = async () => {
    if (loaded > 50) return; // a user paging deep is not pulled back to the top
    const fresh = await api("traces?" + query.toString());
    clear(body);
    loaded = 0;
    for (const t of fresh.traces) body.append(traceRow(t));
    loaded = fresh.traces.length;
    clear(more);
    if (fresh.next_cursor) {
      more.append(h("button", { text: "Load more", "data-testid": "load-more",
                                onclick: () => load(fresh.next_cursor) }));
    }
    if (!loaded) more.append(h("div", { class: "empty", "data-testid": "no-traces",
                                        text: "No traces match." }));
    status.textContent = loaded ? `${loaded} trace(s) shown` : "";
  };
}

// -- one trace: tree + waterfall + span detail ---------------------------------------------------

function buildTree(spans) {
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent_span_id && byId.has(s.parent_span_id)) {
      if (!children.has(s.parent_span_id)) children.set(s.parent_span_id, []);
      children.get(s.parent_span_id).push(s);
    } else {
      roots.push(s);
    }
  }
  const ordered = [];
  const walk = (s, depth) => {
    ordered.push([s, depth]);
    for (const c of children.get(s.span_id) || []) walk(c, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  return { ordered, children };
}

function spanDuration(s) {
  return s.end_time ? (s.end_time - s.start_time) / 1e6 : null;
}

function section(title, content, testid) {
  return [h("h4", { text: title }), h("div", { "data-testid": testid }, content)];
}

function grid(pairs) {
  const box = h("div", { class: "grid2" });
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === "") continue;
    box.append(h("b", { text: k }), h("span", { text: v }));
  }
  return box;
}

function renderSpanDetail(s, events, scores) {
  const box = h("div", { class: "detail", "data-testid": "span-detail",
                         "data-span-id": s.span_id });
  box.append(h("h3", { text: s.name }));
  const ttft = s.completion_start_time ? (s.completion_start_time - s.start_time) / 1e6 : null;
  box.append(grid([
    ["Type", s.type],
    ["State", s.state === "ended" ? null : "in progress"],
    ["Level", s.level !== "default" ? s.level : null],
    ["Status", s.status_message],
    ["Model", s.model],
    ["Provider", s.provider],
    ["Duration", fmtMs(spanDuration(s))],
    ["Time to first token", ttft !== null ? fmtMs(ttft) : null],
    ["Prompt", s.prompt && s.prompt.name ? `${s.prompt.name} v${s.prompt.version ?? "?"}` : null],
    ["Started", fmtTime(s.start_time)],
    ["Span id", s.span_id],
  ]));
  if (s.error) {
    const err = h("div", { class: "error-box", "data-testid": "error" },
      h("div", { class: "msg", text: `${s.error.type || "Error"}: ${s.error.message || ""}` }));
    if (s.error.stack) err.append(folded(String(s.error.stack), "stack"));
    box.append(...section("Error", err, "error-section"));
  }
  if (s.usage) {
    const u = s.usage;
    box.append(...section("Usage", grid([
      ["Input tokens", fmtInt(u.input)],
      ["Cached input", fmtInt(u.cached_input)],
      ["Cache write", fmtInt(u.cache_write)],
      ["Output tokens", fmtInt(u.output)],
      ["Reasoning", fmtInt(u.reasoning)],
      ["Total", fmtInt(u.total ?? ((u.input || 0) + (u.output || 0)))],
    ]), "usage"));
  }
  if (s.cost) {
    box.append(...section("Cost", grid([
      ["Input", fmtCost(s.cost.input)], ["Output", fmtCost(s.cost.output)],
      ["Total", fmtCost(s.cost.total ?? ((s.cost.input || 0) + (s.cost.output || 0)))],
    ]), "cost"));
  }
  if (!isEmpty(s.parameters)) box.append(...section("Parameters", renderValue(s.parameters),
                                                     "parameters"));
  box.append(...section("Input", renderValue(s.input), "input"));
  box.append(...section("Output", renderValue(s.output), "output"));
  if (events.length) {
    const list = h("div", null);
    for (const e of events) {
      list.append(h("div", null, h("b", { text: e.name }),
        h("span", { class: "muted", text: "  +" + fmtMs((e.start_time - s.start_time) / 1e6) })));
      if (!isEmpty(e.metadata)) list.append(renderValue(e.metadata));
      if (!isEmpty(e.input)) list.append(renderValue(e.input));
    }
    box.append(...section("Events", list, "events"));
  }
  if (scores.length) {
    box.append(...section("Scores", grid(scores.map((sc) =>
      [sc.name, String(sc.value) + (sc.comment ? ` — ${sc.comment}` : "")])), "scores"));
  }
  if (!isEmpty(s.metadata)) box.append(...section("Metadata", renderValue(s.metadata),
                                                   "metadata"));
  if (!isEmpty(s.attributes)) box.append(...section("Attributes", renderValue(s.attributes),
                                                     "attributes"));
  return box;
}

async function showTrace(traceId, selectedSpan) {
  const data = await api("traces/" + encodeURIComponent(traceId));
  const t = data.trace;
  const spans = data.spans;
  const head = h("div", { class: "trace-head", "data-testid": "trace-head" },
    h("h2", { text: t.name || "(unnamed)" }),
    h("div", { class: "kv" },
      h("span", null, h("b", { text: "Trace" }), t.trace_id),
      h("span", null, h("b", { text: "Started" }), fmtTime(t.start_ns)),
      h("span", null, h("b", { text: "Latency" }), fmtMs(t.duration_ms)),
      t.tokens ? h("span", null, h("b", { text: "Tokens" }), fmtInt(t.tokens)) : null,
      t.cost ? h("span", null, h("b", { text: "Cost" }), fmtCost(t.cost)) : null,
      t.session_id ? h("span", null, h("b", { text: "Session" }),
        h("a", { href: "#/session/" + encodeURIComponent(t.session_id), text: t.session_id }))
        : null,
      t.user_id ? h("span", null, h("b", { text: "User" }), t.user_id) : null,
      h("span", null, h("b", { text: "Spans" }), String(t.span_count)),
      t.tags.length ? h("span", null, h("b", { text: "Tags" }),
        t.tags.map((tag) => h("span", { class: "tag", text: tag }))) : null,
      data.scores.filter((s) => !s.span_id).map((s) =>
        h("span", { "data-testid": "trace-score" }, h("b", { text: s.name }), String(s.value)))));

  const { ordered, children } = buildTree(spans);
  const start = Math.min(...spans.map((s) => s.start_time));
  const end = Math.max(...spans.map((s) => s.end_time || s.start_time));
  const total = Math.max(end - start, 1);
  const tree = h("div", { class: "tree", "data-testid": "tree" });
  const detail = h("div", { "data-testid": "detail-pane" });
  const nodes = new Map();

  function select(s) {
    for (const n of nodes.values()) n.classList.remove("selected");
    const node = nodes.get(s.span_id);
    if (node) node.classList.add("selected");
    const events = (children.get(s.span_id) || []).filter((c) => c.is_event);
    const scores = data.scores.filter((sc) => sc.span_id === s.span_id ||
      (!sc.span_id && s.parent_span_id === null));
    clear(detail);
    detail.append(renderSpanDetail(s, events, scores));
    const target = "#/trace/" + encodeURIComponent(traceId) + "?span=" +
                   encodeURIComponent(s.span_id);
    if (location.hash !== target) history.replaceState(null, "", target);
  }

  for (const [s, depth] of ordered) {
    const left = ((s.start_time - start) / total) * 100;
    const width = s.end_time ? Math.max(((s.end_time - s.start_time) / total) * 100, 0.3) : 0.3;
    const bar = h("div", {
      class: "bar " + s.type + (s.error || s.level === "error" ? " error" : "") +
             (s.is_event ? " event" : ""),
      style: { left: left + "%", width: s.is_event ? null : width + "%" },
      title: s.is_event ? s.name : fmtMs(spanDuration(s)),
    });
    const node = h("div", {
      class: "node" + (s.error || s.level === "error" ? " error" : ""),
      "data-testid": "tree-node", "data-span-id": s.span_id, "data-depth": depth,
      onclick: () => select(s),
    },
      h("div", { class: "label", style: { paddingLeft: 6 + depth * 16 + "px" } },
        h("span", { "data-testid": "node-name", text: (s.is_event ? "◆ " : "") + s.name }),
        h("span", { class: "badge", text: s.type }),
        s.state !== "ended" ? h("span", { class: "badge", text: "running" }) : null),
      h("div", { class: "lane" }, bar));
    nodes.set(s.span_id, node);
    tree.append(node);
  }
  clear(app);
  app.append(head, h("div", { class: "split" }, tree, detail));
  const chosen = spans.find((s) => s.span_id === selectedSpan) || ordered[0]?.[0];
  if (chosen) select(chosen);
  refreshView = async () => {
    const current = new URLSearchParams(location.hash.split("?")[1] || "").get("span");
    await showTrace(traceId, current);
  };
}

// -- sessions ------------------------------------------------------------------------------------

async function showSessions() {
  const data = await api("sessions");
  const body = h("tbody");
  for (const s of data.sessions) {
    body.append(h("tr", { class: "row", "data-testid": "session-row",
                          onclick: () => { location.hash = "#/session/" +
                                                           encodeURIComponent(s.session_id); } },
      h("td", null, h("a", { href: "#/session/" + encodeURIComponent(s.session_id),
                             text: s.session_id })),
      h("td", { text: s.user_id || "" }),
      h("td", { class: "num", text: String(s.traces) }),
      h("td", { text: fmtTime(s.first_ns) }),
      h("td", { text: fmtTime(s.last_ns) }),
      h("td", { class: "num", text: fmtInt(s.tokens) }),
      h("td", { class: "num", text: fmtCost(s.cost) }),
      h("td", { text: s.error ? "error" : "" })));
  }
  clear(app);
  if (!data.sessions.length) {
    app.append(h("div", { class: "empty", text: "No sessions yet: record spans with session_id." }));
  } else {
    app.append(h("table", { "data-testid": "sessions" },
      h("thead", null, h("tr", null, ["Session", "User", "Traces", "First", "Last", "Tokens",
                                      "Cost", ""].map((c) => h("th", { text: c })))), body));
  }
  refreshView = showSessions;
}

async function showSession(sessionId) {
  const data = await api("sessions/" + encodeURIComponent(sessionId));
  const box = h("div", { "data-testid": "session" });
  box.append(h("h2", { class: "section", text: "Session " + sessionId }));
  for (const turn of data.turns) {
    const messages = [];
    const inMsgs = messagesOf(turn.input);
    if (inMsgs) messages.push(...inMsgs.filter((m) => m.role !== "assistant").slice(-1));
    else if (turn.input !== null && turn.input !== undefined) {
      messages.push({ role: "user", content: asText(turn.input) });
    }
    const outMsgs = messagesOf(turn.output);
    if (outMsgs) messages.push(...outMsgs);
    else if (turn.output !== null && turn.output !== undefined) {
      messages.push({ role: "assistant", content: asText(turn.output) });
    }
    box.append(h("div", { class: "turn", "data-testid": "turn" },
      h("div", { class: "meta" },
        h("a", { href: "#/trace/" + encodeURIComponent(turn.trace_id), text: turn.name }),
        "  ·  " + fmtTime(turn.start_ns) + "  ·  " + fmtMs(turn.duration_ms) +
        (turn.tokens ? "  ·  " + fmtInt(turn.tokens) + " tokens" : "") +
        (turn.error ? "  ·  error" : "")),
      messages.length ? renderChat(messages) : h("span", { class: "muted", text: "—" })));
  }
  if (data.scores.length) {
    box.append(h("h2", { class: "section", text: "Scores" }),
               grid(data.scores.map((s) => [s.name, String(s.value)])));
  }
  clear(app);
  app.append(box);
  refreshView = () => showSession(sessionId);
}

// -- dashboard -----------------------------------------------------------------------------------

async function showDashboard() {
  const d = await api("dashboard?days=30");
  const card = (k, v, id) => h("div", { class: "card", "data-testid": id },
    h("div", { class: "v", text: v }), h("div", { class: "k", text: k }));
  const cards = h("div", { class: "cards" },
    card("traces (30 days)", fmtInt(d.traces) || "0", "dash-traces"),
    card("tokens", fmtInt(d.tokens) || "0", "dash-tokens"),
    card("cost", fmtCost(d.cost) || "$0", "dash-cost"),
    card("error rate", (d.error_rate * 100).toFixed(1) + " %", "dash-errors"));
  const table = (cols, rows, id) => h("table", { "data-testid": id },
    h("thead", null, h("tr", null, cols.map(([c]) => h("th", { text: c })))),
    h("tbody", null, rows.map((r) => h("tr", null, cols.map(([, f]) => h("td", { text: f(r) }))))));
  clear(app);
  app.append(cards,
    h("h2", { class: "section", text: "Per model" }),
    table([["Model", (r) => r.model], ["Generations", (r) => fmtInt(r.generations)],
           ["Tokens", (r) => fmtInt(r.tokens)], ["Cost", (r) => fmtCost(r.cost)],
           ["p50", (r) => fmtMs(r.p50_ms)], ["p95", (r) => fmtMs(r.p95_ms)],
           ["Error rate", (r) => (r.error_rate * 100).toFixed(1) + " %"]], d.per_model,
          "per-model"),
    h("h2", { class: "section", text: "Per day" }),
    table([["Day", (r) => r.day], ["Traces", (r) => fmtInt(r.traces)],
           ["Tokens", (r) => fmtInt(r.tokens)], ["Cost", (r) => fmtCost(r.cost)],
           ["p50", (r) => fmtMs(r.p50_ms)], ["p95", (r) => fmtMs(r.p95_ms)],
           ["Error rate", (r) => (r.error_rate * 100).toFixed(1) + " %"]], d.per_day, "per-day"));
  refreshView = showDashboard;
}

// -- live updates ----------------------------------------------------------------------------------

const live = document.getElementById("live");

async function poll() {
  try {
    const c = await api("changes");
    document.getElementById("db").textContent = c.db;
    live.classList.remove("off");
    if (lastChanges !== null && c.changes !== lastChanges && refreshView) {
      lastChanges = c.changes;
      await refreshView();
    }
    lastChanges = c.changes;
  } catch (err) {
    live.classList.add("off");
  }
  setTimeout(poll, POLL_MS);
}

window.addEventListener("hashchange", route);
route().then(poll);
