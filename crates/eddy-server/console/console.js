// Eddy's web console: a client of the server's documented REST API only (`/ksql`,
// `/query-stream`, `/close-query`, `/query` for PRINT, `/metrics`, `/info`), in plain
// standard JavaScript with no build step and no dependencies.

const $ = (id) => document.getElementById(id);
const KSQL = "application/vnd.ksql.v1+json";
const DELIMITED = "application/vnd.ksqlapi.delimited.v1";
const REFRESH_MS = 2000;

// ---------------------------------------------------------------- REST

async function ksql(text, properties = {}) {
  const response = await fetch("/ksql", {
    method: "POST",
    headers: { "Content-Type": KSQL, Accept: KSQL },
    body: JSON.stringify({ ksql: text, streamsProperties: properties }),
  });
  const body = await response.json();
  if (!response.ok) {
    const error = new Error(body.message || response.statusText);
    error.body = body;
    throw error;
  }
  return body;
}

// Runs a query on `/query-stream` and calls `onHeader` with the column names, then
// `onRow` for every row as it arrives; returns { queryId, done, stop }.
async function stream(sql, properties, onHeader, onRow) {
  const abort = new AbortController();
  const response = await fetch("/query-stream", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: DELIMITED },
    body: JSON.stringify({ sql, properties }),
    signal: abort.signal,
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const error = new Error(body.message || response.statusText);
    error.body = body;
    throw error;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let queryId = null;
  let pending = "";
  const handle = (line) => {
    if (!line.trim()) return;
    const item = JSON.parse(line);
    if (Array.isArray(item)) {
      onRow(item);
    } else if (item.columnNames) {
      queryId = item.queryId || null;
      onHeader(item.columnNames);
    } else if (item.message) {
      throw new Error(item.message);
    }
  };
  const done = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop();
      lines.forEach(handle);
    }
    handle(pending);
  })().catch((e) => {
    if (e.name !== "AbortError") throw e;
  });
  const stop = async () => {
    if (queryId) {
      await fetch("/close-query", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ queryId }),
      }).catch(() => {});
    }
    abort.abort();
  };
  return { done, stop, id: () => queryId };
}

// ---------------------------------------------------------------- metrics

// Records read per query over time, from `/metrics`: query id -> [[seconds, total], …].
const throughput = new Map();

async function scrapeMetrics() {
  const text = await (await fetch("/metrics")).text();
  const now = Date.now() / 1000;
  for (const line of text.split("\n")) {
    const m = line.match(/^eddy_query_records_read_total\{query_id="([^"]+)"\} (\S+)/);
    if (!m) continue;
    const series = throughput.get(m[1]) || [];
    series.push([now, Number(m[2])]);
    while (series.length > 0 && now - series[0][0] > 300) series.shift();
    throughput.set(m[1], series);
  }
}

function rate(id) {
  const s = throughput.get(id) || [];
  if (s.length < 2) return "";
  const [[t0, n0], [t1, n1]] = [s[s.length - 2], s[s.length - 1]];
  return t1 > t0 ? ((n1 - n0) / (t1 - t0)).toFixed(1) : "";
}

// ---------------------------------------------------------------- helpers

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function link(row, text, href) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  row.insertCell().append(a);
}

function fill(table, rows, render) {
  const body = table.tBodies[0];
  body.replaceChildren();
  rows.forEach((item) => render(body.insertRow(), item));
}

function header(table, names) {
  const head = table.tHead;
  head.replaceChildren();
  const row = head.insertRow();
  names.forEach((n) => {
    const th = document.createElement("th");
    th.textContent = n;
    row.append(th);
  });
  table.tBodies[0].replaceChildren();
}

function show(value) {
  return value !== null && typeof value === "object" ? JSON.stringify(value) : value;
}

// ---------------------------------------------------------------- overview

async function refreshOverview() {
  await scrapeMetrics().catch(() => {});
  const [streams, tables, queries] = await ksql("SHOW STREAMS; SHOW TABLES; SHOW QUERIES;");
  fill($("queries"), queries.queries, (row, q) => {
    link(row, q.id, `#/query/${encodeURIComponent(q.id)}`);
    cell(row, q.queryType);
    cell(row, q.state, `state-${q.state}`);
    cell(row, (q.sinks || []).join(", "));
    cell(row, rate(q.id));
    cell(row, q.consumerLag);
    cell(row, q.processingErrors);
  });
  const source = (row, s) => {
    cell(row, s.name);
    cell(row, s.topic);
    cell(row, s.keyFormat);
    cell(row, s.valueFormat || s.format);
  };
  fill($("streams"), streams.streams, source);
  fill($("tables"), tables.tables, (row, t) => {
    source(row, t);
    cell(row, t.isWindowed);
  });
}

// ---------------------------------------------------------------- editor

let running = null;

function renderGutter(errorLine) {
  const lines = $("sql").value.split("\n").length;
  const gutter = $("gutter");
  gutter.replaceChildren();
  for (let n = 1; n <= lines; n++) {
    const span = document.createElement("span");
    span.textContent = `${n}\n`;
    if (n === errorLine) span.className = "error-line";
    gutter.append(span);
  }
}

// Splits text into statements ended by `;`, outside quotes and comments; each with the
// offset of its first character.
function statements(text) {
  const out = [];
  let start = 0;
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"' || c === "`") {
      quote = c;
    } else if (c === "-" && text[i + 1] === "-") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === ";") {
      out.push({ text: text.slice(start, i + 1), offset: start });
      start = i + 1;
    }
  }
  if (text.slice(start).trim()) out.push({ text: text.slice(start), offset: start });
  return out
    .map((s) => {
      const lead = s.text.length - s.text.trimStart().length;
      return { text: s.text.trim(), offset: s.offset + lead };
    })
    .filter((s) => s.text && !/^(--[^\n]*\n?\s*)+$/.test(s.text));
}

function lineOf(text, offset) {
  return text.slice(0, offset).split("\n").length;
}

// Shows `error` for the statement at `offset` of the editor's text, marking its line (and
// column, when the server names one) in the gutter and the text.
function markError(error, statement) {
  const text = $("sql").value;
  let line = lineOf(text, statement.offset);
  let column = 1;
  const located = error.message.match(/^(?:line (\d+):(\d+)|Line: (\d+), Col: (\d+)):/);
  if (located) {
    const l = Number(located[1] || located[3]);
    const c = Number(located[2] || located[4]);
    const lineStart = text.lastIndexOf("\n", statement.offset - 1) + 1;
    const startColumn = statement.offset - lineStart + 1;
    line += l - 1;
    column = l === 1 ? startColumn + c - 1 : c;
  }
  $("error").hidden = false;
  $("error").textContent = `Line ${line}, column ${column}: ${error.message}`;
  $("error").dataset.line = line;
  renderGutter(line);
  const lines = text.split("\n");
  const at = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + column - 1;
  $("sql").focus();
  $("sql").setSelectionRange(at, Math.min(at + 1, text.length));
}

async function runEditor() {
  if (running) await stopEditor();
  $("error").hidden = true;
  renderGutter(null);
  $("status").textContent = "";
  const properties = $("earliest").checked ? { "auto.offset.reset": "earliest" } : {};
  for (const statement of statements($("sql").value)) {
    try {
      if (/^(select)\b/i.test(statement.text)) {
        await runQuery(statement, properties);
      } else if (/^print\b/i.test(statement.text)) {
        throw new Error("PRINT runs on the Topics page");
      } else {
        const [entity] = await ksql(statement.text, properties);
        $("status").textContent = describe(entity);
      }
    } catch (e) {
      markError(e, statement);
      return;
    }
  }
}

function describe(entity) {
  if (!entity) return "Done";
  if (entity.commandStatus) return entity.commandStatus.message;
  for (const key of ["streams", "tables", "queries", "topics"]) {
    if (Array.isArray(entity[key])) {
      header($("results"), ["Name"]);
      fill($("results"), entity[key], (row, item) => cell(row, item.name || item.id));
      return `${entity[key].length} ${key}`;
    }
  }
  return JSON.stringify(entity);
}

async function runQuery(statement, properties) {
  let rows = 0;
  const onHeader = (names) => header($("results"), names);
  const onRow = (values) => {
    rows += 1;
    const row = $("results").tBodies[0].insertRow();
    values.forEach((v) => cell(row, show(v)));
    $("status").textContent = `${rows} row(s)`;
  };
  const query = await stream(statement.text, properties, onHeader, onRow);
  running = query;
  $("stop").disabled = false;
  $("status").textContent = "Waiting for rows…";
  query.done
    .catch((e) => markError(e, statement))
    .finally(() => {
      if (running === query) {
        running = null;
        $("stop").disabled = true;
        $("status").textContent = `${rows} row(s); the query ended`;
      }
    });
}

async function stopEditor() {
  const query = running;
  running = null;
  $("stop").disabled = true;
  if (query) {
    await query.stop();
    $("status").textContent = `${$("results").tBodies[0].rows.length} row(s); stopped`;
  }
}

// ---------------------------------------------------------------- a query's page

let errorStream = null;

async function refreshQuery(id) {
  await scrapeMetrics().catch(() => {});
  const series = throughput.get(id) || [];
  const points = [];
  for (let i = 1; i < series.length; i++) {
    const [t0, n0] = series[i - 1];
    const [t1, n1] = series[i];
    points.push([t1, t1 > t0 ? (n1 - n0) / (t1 - t0) : 0]);
  }
  const max = Math.max(1, ...points.map((p) => p[1]));
  const t0 = points.length ? points[0][0] : 0;
  const span = Math.max(1, points.length ? points[points.length - 1][0] - t0 : 1);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute(
    "points",
    points.map(([t, r]) => `${((t - t0) / span) * 600},${120 - (r / max) * 110}`).join(" "),
  );
  $("chart").replaceChildren(line);

  const sink = $("query-id").dataset.sink;
  if (!sink) return;
  const [description] = await ksql(`DESCRIBE ${sink} EXTENDED;`);
  const rows = [];
  for (const group of description.sourceDescription.queryOffsetSummaries || []) {
    for (const topic of group.topicSummaries || []) {
      for (const p of topic.offsets || []) rows.push([topic.kafkaTopic, p]);
    }
  }
  fill($("lag"), rows, (row, [topic, p]) => {
    cell(row, topic);
    cell(row, p.partition);
    cell(row, p.consumerOffset);
    cell(row, p.logEndOffset);
    cell(row, p.logEndOffset - p.consumerOffset);
  });
}

async function openQuery(id) {
  $("query-id").textContent = id;
  $("query-id").dataset.sink = "";
  const [explained] = await ksql(`EXPLAIN ${id};`);
  const q = explained.queryDescription;
  $("query-sql").textContent = q.statementText;
  $("plan").textContent = q.executionPlan || q.topology || "";
  $("query-id").dataset.sink = (q.sinks || [])[0] || "";
  const logger = `processing.${id}`.replace(/'/g, "''");
  errorStream = await stream(
    `SELECT * FROM EDDY_PROCESSING_LOG WHERE LOGGER = '${logger}' EMIT CHANGES;`,
    { "auto.offset.reset": "earliest" },
    (names) => header($("errors"), names),
    (values) => {
      const row = $("errors").tBodies[0].insertRow(0);
      values.forEach((v) => cell(row, show(v)));
    },
  ).catch(() => null);
}

// ---------------------------------------------------------------- topics

let printing = null;

async function refreshTopics() {
  const [listed] = await ksql("SHOW TOPICS;");
  fill($("topic-list"), listed.topics, (row, t) => {
    cell(row, t.name);
    cell(row, (t.replicaInfo || []).length);
    const button = document.createElement("button");
    button.textContent = "Print";
    button.onclick = () => printTopic(t.name);
    row.insertCell().append(button);
  });
}

async function printTopic(topic) {
  await stopPrint();
  $("print").textContent = "";
  $("print-title").hidden = false;
  $("print-title").textContent = `PRINT '${topic}' FROM BEGINNING`;
  $("print-stop").hidden = false;
  const abort = new AbortController();
  printing = abort;
  const response = await fetch("/query", {
    method: "POST",
    headers: { "Content-Type": KSQL },
    body: JSON.stringify({
      ksql: `PRINT '${topic.replace(/'/g, "''")}' FROM BEGINNING;`,
      streamsProperties: {},
    }),
    signal: abort.signal,
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      $("print").textContent += decoder.decode(value, { stream: true });
    }
  } catch (e) {
    if (e.name !== "AbortError") $("print").textContent += `\n${e.message}`;
  }
}

async function stopPrint() {
  if (printing) printing.abort();
  printing = null;
  $("print-stop").hidden = true;
}

// ---------------------------------------------------------------- pages

let timer = null;

async function route() {
  clearInterval(timer);
  if (errorStream) {
    errorStream.stop();
    errorStream = null;
  }
  await stopPrint();
  const hash = location.hash || "#/";
  const [, page, arg] = hash.match(/^#\/([^/]*)\/?(.*)$/) || [null, "", ""];
  const name = { "": "overview", editor: "editor", query: "query", topics: "topics" }[page] || "overview";
  document.querySelectorAll(".page").forEach((p) => p.classList.toggle("active", p.id === name));
  document
    .querySelectorAll("header nav a")
    .forEach((a) => a.classList.toggle("active", a.dataset.page === name));
  const every = (f) => {
    const tick = () => f().catch((e) => console.error(e));
    tick();
    timer = setInterval(tick, REFRESH_MS);
  };
  if (name === "overview") every(refreshOverview);
  if (name === "topics") refreshTopics().catch((e) => console.error(e));
  if (name === "query") {
    const id = decodeURIComponent(arg);
    await openQuery(id).catch((e) => ($("query-sql").textContent = e.message));
    every(() => refreshQuery(id));
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", async () => {
  $("run").onclick = runEditor;
  $("stop").onclick = stopEditor;
  $("print-stop").onclick = stopPrint;
  $("sql").addEventListener("input", () => renderGutter(null));
  $("sql").addEventListener("scroll", () => ($("gutter").scrollTop = $("sql").scrollTop));
  $("sql").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) runEditor();
  });
  renderGutter(null);
  fetch("/info")
    .then((r) => r.json())
    .then((i) => ($("server").textContent = `${i.KsqlServerInfo.ksqlServiceId} · ${i.KsqlServerInfo.version}`))
    .catch(() => {});
  route();
});
