// nf-web's page: a small single-page app over nf-web's JSON API (see
// tools/web/nf_web.c). Every text from the broker goes into the page as
// text (textContent), never as markup: titles are hostile input.
"use strict";

const $main = () => document.getElementById("main");
let csrf = document.querySelector('meta[name="nf-csrf"]').content;
let options = null;      // GET /api/options
let stream = null;       // the open EventSource
let timer = null;        // the operations page's poll
let reconnect = null;    // reopens the job page's stream (after Resume or Retry)
const finalStatuses = new Set(["completed", "partial", "failed", "cancelled"]);
const FLOW = ["DISCOVERED", "RAW", "CLEANED", "VALIDATED", "OUTLIER", "READY", "EXPORTED"];

// ---- helpers -----------------------------------------------------------

// h("td", {class: "num"}, "12"): an element; strings become text nodes.
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

function say(text) {            // for screen readers
  const live = document.getElementById("live");
  live.textContent = "";
  setTimeout(() => { live.textContent = text; }, 30);
}

function banner(text, bad) {
  const b = document.getElementById("banner");
  b.hidden = !text;
  b.className = bad ? "banner bad" : "banner";
  b.textContent = text || "";
}

async function api(method, path, body, retried) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") {
    init.headers["X-CSRF-Token"] = csrf;
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body || {});
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    return { status: 0, data: { ok: false, error: "nf-web does not answer (" + e.message + ")" } };
  }
  let data;
  try { data = await res.json(); } catch (e) { data = { ok: false, error: "HTTP " + res.status }; }
  if (res.status === 401) { location.reload(); }
  if (res.status === 403 && data.csrf && !retried) {   // nf-web restarted: a new token
    const s = await api("GET", "/api/session");
    if (s.data.csrf) { csrf = s.data.csrf; return api(method, path, body, true); }
  }
  return { status: res.status, data };
}

const fmtInt = (n) => (n === null || n === undefined) ? "" : Number(n).toLocaleString("en-US");
const fmtNum = (n, d) => (n === null || n === undefined) ? "" : Number(n).toFixed(d);

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " days ago";
}

function duration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function badge(status) { return h("span", { class: "badge " + (status || ""), text: status || "?" }); }

function label(job) {
  return (job.niche || "") + (job.sub_niche ? " | " + job.sub_niche : "");
}

function stop() {
  reconnect = null;
  if (stream) { stream.close(); stream = null; }
  if (timer) { clearInterval(timer); timer = null; }
  banner("");
}

function show(title, ...content) {
  const m = $main();
  m.replaceChildren(h("h1", { text: title }), ...content);
  document.title = title + " · nicheflow";
}

// ---- Jobs ----------------------------------------------------------------

function total(counts) { return Object.values(counts || {}).reduce((a, b) => a + b, 0); }
function count(counts, s) { return (counts && counts[s]) || 0; }

function jobsTable(jobs) {
  if (!jobs.length) return h("p", { text: "No jobs yet. Start one under New job." });
  const head = ["Job", "Niche", "Status", "Phase", "Videos", "Outliers", "Rejected", "Failed", "Age"];
  return h("div", { class: "scroll" }, h("table", { id: "jobs" },
    h("caption", { class: "sr-only", text: "Jobs, newest first" }),
    h("thead", {}, h("tr", {}, head.map((t, i) => h("th", { scope: "col", class: i >= 4 && i <= 7 ? "num" : null, text: t })))),
    h("tbody", {}, jobs.map((j) => h("tr", { "data-job": j.id },
      h("td", {}, h("a", { href: "#/job/" + j.id, text: "#" + j.id })),
      h("td", {}, label(j)),
      h("td", {}, badge(j.status)),
      h("td", { text: finalStatuses.has(j.status) ? "" : (j.phase || "") }),
      h("td", { class: "num", text: fmtInt(total(j.counts)) }),
      h("td", { class: "num", text: fmtInt(count(j.counts, "OUTLIER") + count(j.counts, "READY") + count(j.counts, "EXPORTED")) }),
      h("td", { class: "num", text: fmtInt(count(j.counts, "REJECTED")) }),
      h("td", { class: "num", text: fmtInt(count(j.counts, "FAILED")) }),
      h("td", { text: ago(j.created_at), title: j.created_at }))))));
}

async function pageJobs(query) {
  const status = query.get("status") || "";
  const select = h("select", { id: "status-filter", on: { change: (e) => {
    location.hash = "#/jobs" + (e.target.value ? "?status=" + e.target.value : "");
  } } }, h("option", { value: "", text: "every status" }),
  (options ? options.statuses : []).map((s) => h("option", { value: s.name, selected: s.name === status, text: s.name })));
  const holder = h("div", { id: "jobs-holder" }, h("p", { text: "Loading…" }));
  show("Jobs", h("div", { class: "toolbar" }, h("div", { class: "field" },
    h("label", { for: "status-filter", text: "Show" }), select),
    h("a", { class: "button", href: "#/new", text: "New job" })), holder);
  stream = new EventSource("/api/events?limit=200" + (status ? "&status=" + encodeURIComponent(status) : ""));
  stream.addEventListener("status", (e) => {
    banner("");
    holder.replaceChildren(jobsTable(JSON.parse(e.data).jobs || []));
  });
  stream.addEventListener("broker", () => banner("The broker does not answer; still trying.", true));
}

// ---- New job -------------------------------------------------------------

const NAMES = {
  niche: ["Niche", "what the videos are about, as you would search it"],
  sub_niche: ["Sub-niche", "narrows the niche (optional)"],
  priority: ["Priority", "which jobs the workers serve first"],
  count: ["Videos to discover", null], top_n: ["Top outliers", "how many get ideas written"],
  since: ["Published since", null], until: ["Published until", null],
  region: ["Region", "two-letter country code, e.g. US"], lang: ["Languages", "e.g. en or en,en-GB"],
  translate: ["Translate transcripts", null], format: ["Format", null],
  source: ["Source", null], min_views: ["Minimum views", null], max_pages: ["Search pages", null],
  max_age_days: ["Maximum age (days)", null], order: ["Search order", null],
};

function field(key, control, help) {
  const [name, about] = NAMES[key] || [key, null];
  control.id = "f-" + key;
  control.name = key;
  const helpId = "h-" + key, errId = "e-" + key;
  control.setAttribute("aria-describedby", helpId + " " + errId);
  const text = [about, help].filter(Boolean).join("; ");
  if (control.type === "checkbox")
    return h("div", { class: "field" }, h("div", { class: "check" }, control, h("label", { for: control.id, text: name })),
      h("p", { class: "help", id: helpId, text }), h("p", { class: "field-error", id: errId, role: "alert" }));
  return h("div", { class: "field" }, h("label", { for: control.id, text: name }), control,
    h("p", { class: "help", id: helpId, text }), h("p", { class: "field-error", id: errId, role: "alert" }));
}

async function pageNew() {
  if (!options) return show("New job", h("p", { text: "nf-web cannot read the options; reload." }));
  const fields = [
    field("niche", h("input", { type: "text", required: true, maxlength: 200, autocomplete: "off" })),
    field("sub_niche", h("input", { type: "text", maxlength: 200, autocomplete: "off" })),
    field("priority", h("select", {}, options.priorities.map((p) => h("option", { value: p, selected: p === "standard", text: p })))),
  ];
  for (const o of options.options) {
    let c;
    if (o.type === "int" && o.min === 0 && o.max === 1) c = h("input", { type: "checkbox" });
    else if (o.type === "int") c = h("input", { type: "number", step: 1, inputmode: "numeric" });
    else if (o.enums.length) c = h("select", {}, h("option", { value: "", text: "(default)" }), o.enums.map((v) => h("option", { value: v, text: v })));
    else if (o.key === "since" || o.key === "until") c = h("input", { type: "date" });
    else c = h("input", { type: "text", autocomplete: "off" });
    fields.push(field(o.key, c, "must be " + o.want));
  }
  const summary = h("div", { id: "form-errors", class: "summary-error", role: "alert", tabindex: "-1", hidden: true });
  const submit = h("button", { type: "submit", id: "submit", text: "Start the job" });
  const form = h("form", { id: "new-job", novalidate: true, on: { submit: async (e) => {
    e.preventDefault();
    submit.disabled = true;
    const res = await api("POST", "/api/jobs", collect(form));
    submit.disabled = false;
    if (res.data.ok) { say("Job " + res.data.job_id + " started"); location.hash = "#/job/" + res.data.job_id; return; }
    markErrors(form, summary, res.data);
  } } }, summary, h("div", { class: "form-grid" }, fields), h("div", { class: "actions" }, submit));
  show("New job", h("p", { text: "Everything nf-submit offers; only the niche is needed. The broker checks the rest." }), form);
  document.getElementById("f-niche").focus();
}

function collect(form) {
  const body = { options: {} };
  for (const el of form.elements) {
    if (!el.name) continue;
    const o = options.options.find((x) => x.key === el.name);
    if (!o) { if (el.value.trim() !== "") body[el.name] = el.value; continue; }
    if (el.type === "checkbox") { if (el.checked) body.options[o.key] = 1; continue; }
    if (el.value.trim() === "") continue;
    body.options[o.key] = o.type === "int" && /^-?\d+$/.test(el.value.trim()) ? Number(el.value.trim()) : el.value.trim();
  }
  return body;
}

function markErrors(form, summary, data) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
  const fields = data.fields || {};
  let first = null;
  const general = [];
  for (const [key, msg] of Object.entries(fields)) {
    const el = form.querySelector("#f-" + CSS.escape(key));
    if (!key || !el) { general.push(msg); continue; }
    el.setAttribute("aria-invalid", "true");
    form.querySelector("#e-" + CSS.escape(key)).textContent = msg;
    first = first || el;
  }
  if (!Object.keys(fields).length) general.push(data.error || "the broker refused the job");
  summary.replaceChildren(h("p", { text: "The job was not started: " + (first ? "see the marked fields." : "") }),
    general.length ? h("ul", {}, general.map((g) => h("li", { text: g }))) : null);
  summary.hidden = false;
  (first || summary).focus();
}

// ---- Job -----------------------------------------------------------------

// Each stage's progress: [name, done, of].
function stageBars(st) {
  const c = st.counts || {}, job = st.job || {}, opts = job.options || {};
  const all = total(c);
  const past = (k) => count(c, "REJECTED") + count(c, "FAILED") + FLOW.slice(k + 1).reduce((a, s) => a + count(c, s), 0);
  const outliers = count(c, "OUTLIER") + count(c, "READY") + count(c, "EXPORTED");
  const analyzed = outliers > 0 || (job.phase && job.phase !== "analyze" && all > 0 && past(3) === all && count(c, "VALIDATED") === 0);
  return [
    ["discover", Math.min(all, opts.count || all), opts.count || all],
    ["scrape", past(0), all], ["sanitize", past(1), all], ["geo", past(2), all],
    ["analyze", analyzed ? 1 : 0, 1],
    ["architect", count(c, "READY") + count(c, "EXPORTED"), outliers || opts.top_n || 0],
    ["export", count(c, "EXPORTED") > 0 ? 1 : 0, 1],
  ];
}

function fraction(st) {
  const bars = stageBars(st);
  if (finalStatuses.has(st.job.status)) return 1;
  let f = bars[0][2] ? 0.2 * bars[0][1] / bars[0][2] : 0;
  for (let i = 1; i <= 4 && i < bars.length; i++) f += bars[i][2] ? 0.15 * bars[i][1] / bars[i][2] : 0;
  f += bars[4][1] ? 0.1 : 0;
  return Math.min(f, 0.99);
}

function renderJob(id, st, holder) {
  const job = st.job, c = st.counts || {};
  const status = job.status;
  const final = finalStatuses.has(status);
  const act = (what, text, cls) => h("button", { type: "button", id: "btn-" + what, class: cls, text, on: { click: async (e) => {
    e.target.disabled = true;
    const res = await api("POST", "/api/jobs/" + id + "/" + what);
    const msg = res.data.ok ? text + ": done" + (res.data.restored !== undefined ? " (" + res.data.restored + " videos again)" : "") : res.data.error;
    document.getElementById("action-result").textContent = msg;
    say(msg);
    if (res.data.ok && reconnect) reconnect();   // a final job's stream had ended
  } } });
  const buttons = [];
  if (!final && status !== "cancelling") buttons.push(act("cancel", "Cancel", "danger"));
  if (final && status !== "cancelled" && count(c, "FAILED") > 0) buttons.push(act("retry", "Retry failed", "secondary"));
  if (["cancelled", "failed", "partial"].includes(status)) buttons.push(act("resume", "Resume"));
  const elapsed = ((final && job.finished_at ? Date.parse(job.finished_at) : Date.now()) - Date.parse(job.created_at)) / 1000;
  const f = fraction(st);
  const eta = !final && f > 0.02 ? "about " + duration(elapsed * (1 - f) / f) + " left" : final ? "finished" : "estimating";
  const bars = stageBars(st);
  const exports = st.exports || [];
  const parts = [
    h("p", { class: "meta" },
      h("span", {}, "Status ", badge(status)),
      !final && job.phase ? h("span", {}, "Phase ", h("b", { id: "phase", text: job.phase })) : null,
      h("span", {}, "Progress ", h("b", { id: "progress", text: Math.round(f * 100) + "%" })),
      h("span", {}, "Elapsed ", h("b", { text: duration(elapsed) })),
      h("span", { id: "eta" }, "ETA ", h("b", { text: eta })),
      h("span", {}, "Priority ", h("b", { text: job.priority !== undefined ? options && options.priorities[job.priority] || job.priority : "" }))),
    job.reason ? h("p", { id: "reason", text: job.reason }) : null,
    h("div", { class: "actions" }, buttons, exports.length ? h("a", { class: "button secondary", href: "#/job/" + id + "/outliers", id: "to-outliers", text: "Outliers" }) : null),
    h("p", { id: "action-result", role: "status" }),
    h("h2", { text: "Stages" }),
    h("div", { class: "stages card", id: "stages" }, bars.map(([name, done, of]) => [
      h("span", { id: "l-" + name, text: name }),
      h("progress", { id: "bar-" + name, max: Math.max(of, 1), value: Math.min(done, Math.max(of, 1)), "aria-labelledby": "l-" + name, "aria-describedby": "n-" + name }),
      h("span", { class: "count num", id: "n-" + name, text: fmtInt(done) + " / " + fmtInt(of) })])),
    h("h2", { text: "Funnel" }),
    h("ul", { class: "funnel", id: "funnel" }, [...FLOW, "REJECTED", "FAILED"].map((s) =>
      h("li", { "data-state": s }, s + " ", h("span", { class: "n", text: fmtInt(count(c, s)) })))),
  ];
  const rej = Object.entries(st.rejected || {}).sort((a, b) => b[1] - a[1]);
  if (rej.length) parts.push(h("h2", { text: "Why videos were rejected" }), h("div", { class: "scroll" }, h("table", { id: "rejected" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Reason" }), h("th", { scope: "col", class: "num", text: "Videos" }))),
    h("tbody", {}, rej.map(([r, n]) => h("tr", {}, h("td", { text: r }), h("td", { class: "num", text: fmtInt(n) })))))));
  if (exports.length) parts.push(h("h2", { text: "Exports" }), h("p", { class: "actions" },
    exports.map((fmt) => h("a", { class: "button secondary", href: "/api/jobs/" + id + "/export/" + fmt, download: "", id: "dl-" + fmt, text: "Download " + fmt }))),
  (st.export_versions || []).length > exports.length ? h("p", { class: "meta", text: "Earlier versions: " +
    [...new Set(st.export_versions.map((v) => v.version))].join(", ") + " (nf-submit export --export-version N)" }) : null);
  const hist = st.history || [];
  if (hist.length) parts.push(h("h2", { text: "Status history" }), h("div", { class: "scroll" }, h("table", { id: "history" },
    h("thead", {}, h("tr", {}, ["When", "From", "To", "Why"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, hist.map((r) => h("tr", {}, h("td", { text: new Date(r.at).toLocaleString(), title: r.at }),
      h("td", { text: r.from || "" }), h("td", {}, badge(r.to)), h("td", { text: r.reason || "" })))))));
  const focused = document.activeElement && document.activeElement.id;
  holder.replaceChildren(...parts.filter(Boolean));
  if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
}

async function pageJob(id) {
  const holder = h("div", { id: "job" }, h("p", { text: "Loading…" }));
  show("Job " + id, holder);
  let last = null;
  reconnect = () => {
    if (stream) stream.close();
    stream = new EventSource("/api/events?job=" + id);
    stream.addEventListener("status", (e) => {
      const st = JSON.parse(e.data);
      banner("");
      document.querySelector("h1").textContent = "Job " + id + ": " + label(st.job);
      document.title = "Job " + id + " · nicheflow";
      if (last && last !== st.job.status) say("Job " + id + " is " + st.job.status);
      last = st.job.status;
      renderJob(id, st, holder);
    });
    stream.addEventListener("end", () => { if (stream) { stream.close(); stream = null; } });
    stream.addEventListener("refused", (e) => {
      holder.replaceChildren(h("p", { text: JSON.parse(e.data).error || "no such job" }));
      stream.close(); stream = null;
    });
    stream.addEventListener("broker", () => banner("The broker does not answer; still trying.", true));
    stream.onerror = () => { if (stream) banner("Connection to nf-web lost; reconnecting…", true); };
  };
  reconnect();
}

// ---- Outliers ------------------------------------------------------------

const SCORES = [
  ["outlier_x", "x median", "Views divided by the channel's baseline: the median views of its recent uploads (or its lifetime mean when it has too few). 10x: ten times what the channel usually gets.", (v) => v === null || v === undefined ? "" : fmtNum(v, 1) + "x"],
  ["multiplier", "Multiplier", "Views divided by the channel's lifetime average views per video.", (v) => fmtNum(v, 2)],
  ["views_per_sub", "Views/sub", "Views divided by the channel's subscribers: reach beyond the audience it has.", (v) => fmtNum(v, 2)],
  ["velocity", "Velocity", "Views per day since publication.", (v) => fmtInt(v === null ? null : Math.round(v))],
  ["engagement", "Engagement", "(Likes + comments) divided by views.", (v) => v === null || v === undefined ? "" : fmtNum(v * 100, 2) + "%"],
  ["quality", "Quality", "The transcript's quality score (0 to 100): length, words, noise.", (v) => fmtNum(v, 1)],
  ["composite", "Composite", "The ranking score: the weighted sum of the components (NF_WEIGHTS).", (v) => fmtNum(v, 2)],
];

function ideas(o) {
  const items = [["Title variants", o.title_variants], ["Hook (first 15 s)", o.hook], ["Outline", o.outline],
    ["Thumbnail concept", o.thumbnail], ["Why it worked", o.why_it_worked], ["Written by", o.ai_source]].filter(([, v]) => v);
  if (!items.length) return h("span", { class: "meta", text: "no AI content" });
  return h("details", { class: "ideas" }, h("summary", { text: "Ideas to film" }),
    h("dl", {}, items.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])));
}

async function pageOutliers(id) {
  show("Outliers of job " + id, h("p", { text: "Loading…" }));
  const res = await api("GET", "/api/jobs/" + id + "/outliers");
  if (!res.data.ok) return show("Outliers of job " + id, h("p", { text: res.data.error }), h("a", { href: "#/job/" + id, text: "Back to the job" }));
  const doc = res.data.export, rows = doc.outliers || [];
  const head = h("tr", {}, h("th", { scope: "col", class: "num", text: "Rank" }), h("th", { scope: "col", text: "Thumbnail" }),
    h("th", { scope: "col", text: "Title" }), h("th", { scope: "col", text: "Channel" }), h("th", { scope: "col", class: "num", text: "Views" }),
    SCORES.map(([k, name, about]) => h("th", { scope: "col", class: "num", title: about, id: "col-" + k, text: name })));
  const width = 6 + SCORES.length;
  const body = rows.map((o) => [h("tr", { class: "outlier", "data-rank": o.rank },
    h("td", { class: "num rank", text: o.rank }),
    h("td", {}, o.thumbnail_src ? h("img", { class: "thumb", src: o.thumbnail_src, alt: "Thumbnail of " + (o.title || o.video_id), loading: "lazy", width: 160, height: 90 }) : ""),
    h("td", { class: "title" }, h("a", { href: o.url, target: "_blank", rel: "noopener noreferrer", text: o.title || o.video_id })),
    h("td", {}, o.channel_url ? h("a", { href: o.channel_url, target: "_blank", rel: "noopener noreferrer", text: o.channel || "" }) : (o.channel || "")),
    h("td", { class: "num", text: fmtInt(o.views) }),
    SCORES.map(([k, name, about, fmt]) => h("td", { class: "num score-" + k, title: name + ": " + about + (k === "outlier_x" && o.baseline ? " Baseline: " + o.baseline + "." : ""), text: fmt(o[k]) }))),
  h("tr", { class: "ideas-row" }, h("td", {}), h("td", { colspan: width - 1 }, ideas(o)))]);
  const version = res.data.versions > 1 ? " (export version " + res.data.version + " of " + res.data.versions + ")" : "";
  show("Outliers of job " + id,
    h("p", { class: "meta" }, h("span", { text: label(doc.job || {}) + version }), h("a", { href: "#/job/" + id, text: "Back to the job" })),
    h("p", { class: "actions" }, ["xlsx", "csv", "json"].map((fmt) => h("a", { class: "button secondary", href: "/api/jobs/" + id + "/export/" + fmt, download: "", id: "dl-" + fmt, text: "Download " + fmt }))),
    rows.length ? h("div", { class: "scroll" }, h("table", { id: "outliers" }, h("caption", { class: "sr-only", text: "Outliers by rank" }), h("thead", {}, head), h("tbody", {}, body)))
      : h("p", { text: "This job found no outliers." }),
    h("h2", { text: "What the scores mean" }),
    h("dl", { class: "legend" }, SCORES.map(([, name, about]) => [h("dt", { text: name }), h("dd", { text: about })])));
}

// ---- Operations ------------------------------------------------------------

function renderOps(d, holder) {
  const st = d.stats;
  const parts = [];
  if (!st) parts.push(h("p", { text: "No figures from the broker yet (it publishes them every second)." }));
  else {
    const svcs = Object.entries(st.services || {});
    parts.push(h("p", { class: "meta" },
      h("span", {}, "Database ", h("b", { id: "db", class: st.database ? "up" : "down", text: st.database ? "up" : "DOWN" })),
      h("span", {}, "Dead workers ", h("b", { text: fmtInt(st.dead_workers) })),
      h("span", {}, "Fenced replies ", h("b", { text: fmtInt(st.fenced) })),
      h("span", {}, "Dropped ", h("b", { text: fmtInt(st.dropped) })),
      h("span", {}, "Figures ", h("b", { text: d.stats_age_ms < 3000 ? "live" : "stale (" + Math.round(d.stats_age_ms / 1000) + " s old)" }))));
    parts.push(h("h2", { text: "Services" }), h("div", { class: "scroll" }, h("table", { id: "services" },
      h("thead", {}, h("tr", {}, ["Service", "Workers", "Idle", "Queue depth", "In flight", "Replies", "Replies/s"].map((t, i) => h("th", { scope: "col", class: i ? "num" : null, text: t })))),
      h("tbody", {}, svcs.map(([name, s]) => h("tr", { "data-service": name }, h("td", { text: name }),
        h("td", { class: "num", text: fmtInt(s.workers) }), h("td", { class: "num", text: fmtInt(s.idle) }),
        h("td", { class: "num", text: fmtInt(s.queued) }), h("td", { class: "num", text: fmtInt(s.dispatched) }),
        h("td", { class: "num", text: fmtInt(s.replies) }), h("td", { class: "num", text: fmtNum((d.rates || {})[name] || 0, 1) })))))));
  }
  parts.push(h("h2", { text: "Errors in the last minute" }),
    h("p", { class: "meta" }, h("span", {}, "Failures ", h("b", { id: "failures", text: fmtInt(d.failures) })),
      h("span", {}, "Retries ", h("b", { id: "retries", text: fmtInt(d.retries) }))),
    (d.classes || []).length ? h("div", { class: "scroll" }, h("table", { id: "errors" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "num", text: "Count" }), h("th", { scope: "col", text: "Class (numbers blanked)" }))),
      h("tbody", {}, d.classes.map((c) => h("tr", {}, h("td", { class: "num", text: fmtInt(c.count) }), h("td", { text: c.class }))))))
      : h("p", { text: "None since nf-web started listening." }));
  holder.replaceChildren(...parts);
}

async function pageOps() {
  const holder = h("div", { id: "ops" }, h("p", { text: "Loading…" }));
  show("Operations", holder);
  const tick = async () => {
    const res = await api("GET", "/api/ops");
    if (res.data.ok) renderOps(res.data, holder);
    else banner(res.data.error || "nf-web does not answer", true);
  };
  await tick();
  timer = setInterval(tick, 1000);
}

// ---- routing -------------------------------------------------------------

async function route() {
  stop();
  const [path, qs] = (location.hash.replace(/^#/, "") || "/jobs").split("?");
  const query = new URLSearchParams(qs || "");
  const parts = path.split("/").filter(Boolean);
  for (const a of document.querySelectorAll("[data-nav]"))
    a.toggleAttribute("aria-current", false);
  const nav = document.querySelector('[data-nav="' + (parts[0] === "job" ? "jobs" : parts[0]) + '"]');
  if (nav) nav.setAttribute("aria-current", "page");
  if (!options) {
    const res = await api("GET", "/api/options");
    if (res.data.ok) options = res.data;
  }
  if (parts[0] === "new") await pageNew();
  else if (parts[0] === "ops") await pageOps();
  else if (parts[0] === "job" && /^\d+$/.test(parts[1] || "") && parts[2] === "outliers") await pageOutliers(parts[1]);
  else if (parts[0] === "job" && /^\d+$/.test(parts[1] || "")) await pageJob(parts[1]);
  else await pageJobs(query);
  if (parts[0] !== "new") $main().focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  const out = document.getElementById("logout");
  out.addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
    location.reload();
  });
  route();
});
