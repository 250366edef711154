// The live page: one EventSource (/events) drives everything; every control is a command
// (POST /api/<command>), so the page shows a change the same way whoever made it.
"use strict";

const $ = (id) => document.getElementById(id);
const S = {
  labels: [], samples: {}, captureLabel: null, paused: false, lastPred: 0, connected: false,
  stalls: 0, retraining: false, model: null, count: null, hand: null,
};
const STALL_S = 3;  // no prediction for this long (not paused): the camera has stalled

// ---- connection and the state overlay --------------------------------------------------
function setState() {
  const st = $("state"), img = $("video");
  let kind = "live", text = "";
  const age = (Date.now() - S.lastPred) / 1000;
  if (!S.connected) { kind = "disconnected"; text = "disconnected: reconnecting to the device…"; }
  else if (S.paused) { kind = "paused"; text = "paused: counting is stopped (Resume starts it)"; }
  else if (!S.lastPred) { kind = "connecting"; text = "waiting for the first frame…"; }
  else if (age > STALL_S) { kind = "stalled"; text = `camera stalled: no new frame for ${Math.round(age)} s`; }
  st.dataset.state = kind;
  st.textContent = text;
  st.hidden = kind === "live";
  img.classList.toggle("stale", kind !== "live");
  $("conn").textContent = kind === "live" ? "live" : kind;
  $("conn").dataset.state = kind;
  $("pause").textContent = S.paused ? "Resume" : "Pause";
  $("pause").classList.toggle("primary", S.paused);
}
setInterval(setState, 500);

function openVideo() {
  $("video").src = "/video?t=" + Date.now();
}
$("video").addEventListener("error", () => setTimeout(openVideo, 2000));

let es = null;
function connect() {
  es = new EventSource("/events");
  es.onopen = () => { S.connected = true; setState(); openVideo(); refreshStatus(); };
  es.onerror = () => { S.connected = false; setState(); };
  es.addEventListener("prediction", (m) => onPrediction(JSON.parse(m.data)));
  es.addEventListener("count", (m) => onCount(JSON.parse(m.data)));
  es.addEventListener("stats", (m) => onStats(JSON.parse(m.data)));
  es.addEventListener("event", (m) => onEvent(JSON.parse(m.data)));
}

// ---- what the device says ---------------------------------------------------------------
function onPrediction(p) {
  S.lastPred = Date.now();
  drawBars(p.scores || {}, p.label);
  const t = p.timing_ms || {};
  const parts = Object.keys(t).map((k) => `${k} ${t[k].toFixed(1)}`);  // the pipeline's stages, in its order
  $("latency").textContent = parts.length ? parts.join(" · ") + " ms" : "–";
  showModel(p.model);
  const h = p.hand;
  $("hand").textContent = !h ? "–" : h.present ? `yes (${pct(h.score)}${h.handedness ? ", " + h.handedness : ""})` : "no hand";
  if (JSON.stringify(h && h.present) !== JSON.stringify(S.hand && S.hand.present)) { S.hand = h; renderCount(); }
  S.hand = h;
  setState();
}

function showModel(id) {
  if (!id || id === S.model) return;
  S.model = id;
  $("model").textContent = id;
  const prec = (id.split("/")[1] || "").replace("+head", "");
  $("precision").textContent = prec + (id.endsWith("+head") ? " (retrained head)" : "");
}

function onCount(c) {
  S.count = c;
  renderCount();
  showModel(c.model);
}

// A null count is "no hand" when the hand stage says there is none, "unsure" otherwise (a hand
// the smoother is not yet sure of, or a pipeline without a hand stage).
function renderCount() {
  const c = S.count;
  if (!c) return;
  const big = $("count");
  const noHand = c.hand === false || (S.hand && S.hand.present === false);
  if (c.count !== null && c.count !== undefined) { big.textContent = String(c.count); big.classList.remove("none"); }
  else if (c.label) { big.textContent = c.label; big.classList.remove("none"); }
  else { big.textContent = noHand ? "no hand" : "unsure"; big.classList.add("none"); }
  $("countsub").textContent = c.label ? `stable at ${pct(c.confidence)} since ${new Date(c.since).toLocaleTimeString()}`
    : noHand ? "no hand in view" : "no stable count yet (below smoothing.min_confidence, or changing)";
}

function onStats(s) {
  if (typeof s.fps === "number") $("fps").textContent = s.fps.toFixed(1);
  if (typeof s.paused === "boolean") S.paused = s.paused;
  if (s.samples) S.samples = s.samples;
  if (s.capture_label !== undefined) S.captureLabel = s.capture_label;
  if (typeof s.retraining === "boolean" && !s.retraining && S.retraining) S.retraining = false;
  showModel(s.model);
  drawLabels();
  setState();
}

function onEvent(e) {
  logEvent(e);
  switch (e.type) {
    case "sample_captured":
      if (e.samples) S.samples = e.samples;
      drawLabels(e.label);
      break;
    case "label_selected":
      S.captureLabel = e.label; drawLabels(); break;
    case "model_swapped":
      if (e.labels) S.labels = e.labels;
      showModel(e.model); drawLabels(); loadModels(); break;
    case "retrain_started":
      S.retraining = true; progress(0, "training: starting");
      break;
    case "retrain_progress":
      S.retraining = true;
      progress(e.progress, `training: ${e.phase} ${Math.round(100 * e.progress)} %`);
      break;
    case "retrain_finished":
      S.retraining = false;
      finishTrain(e);
      break;
  }
}

// ---- bars and labels ---------------------------------------------------------------------
function drawBars(scores, top) {
  const box = $("bars");
  const keys = Object.keys(scores);
  if (!keys.length) {  // no hand, no scores: the bars stay, at zero
    for (const row of box.children) { row.querySelector(".fill").style.width = "0%"; row.querySelector(".val").textContent = "–"; row.classList.remove("top"); }
    return;
  }
  if (box.dataset.keys !== keys.join("\u0000")) {
    box.replaceChildren(...keys.map((k) => el("div", {class: "bar", "data-label": k},
      el("span", {class: "name", text: k}), el("span", {class: "track"}, el("span", {class: "fill"})),
      el("span", {class: "val", text: ""}))));
    box.dataset.keys = keys.join("\u0000");
  }
  for (const row of box.children) {
    const p = scores[row.dataset.label] || 0;
    row.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
    row.querySelector(".val").textContent = pct(p);
    row.classList.toggle("top", row.dataset.label === top);
  }
}

function allLabels() {
  const out = [...S.labels];
  for (const k of Object.keys(S.samples || {})) if (!out.includes(k)) out.push(k);
  if (S.captureLabel && !out.includes(S.captureLabel)) out.push(S.captureLabel);
  return out;
}

function drawLabels(flash) {
  const box = $("labels");
  const labels = allLabels();
  if (box.dataset.keys !== labels.join("\u0000")) {
    box.replaceChildren(...labels.map((l) => {
      const b = el("button", {type: "button", class: "label", "data-label": l},
        el("span", {class: "lname", text: l}), el("span", {class: "n", text: "0"}));
      b.addEventListener("click", () => capture(l));
      return b;
    }));
    box.dataset.keys = labels.join("\u0000");
  }
  for (const b of box.children) {
    const l = b.dataset.label;
    b.querySelector(".n").textContent = String((S.samples || {})[l] || 0);
    b.classList.toggle("current", l === S.captureLabel);
    b.title = `store the current frame as “${l}” (${(S.samples || {})[l] || 0} stored)`;
    if (l === flash) { b.classList.remove("flash"); void b.offsetWidth; b.classList.add("flash"); }
  }
}

async function capture(label) {
  const r = await post("/api/capture", {label});
  if (r.ok) {
    if (r.data.samples) S.samples = r.data.samples;
    drawLabels(label);
    toast(`stored as “${label}” (${r.data.samples ? r.data.samples[label] : "?"} now)`);
  } else toast("capture refused: " + r.error, true);
}

$("newlabel").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const name = $("newname").value.trim();
  if (!name) { toast("type a label first", true); return; }
  $("newname").value = "";
  capture(name);
});

// ---- train, rollback, pause, model -------------------------------------------------------
function progress(frac, text) {
  const p = $("progress");
  p.hidden = false; p.value = frac;
  $("trainmsg").textContent = text;
  $("train").disabled = true;
}

function acc(a) { return a === null || a === undefined ? "n/a" : pct(a); }

function finishTrain(e) {
  $("train").disabled = false;
  $("progress").value = e.ok ? 1 : $("progress").value;
  if (!e.ok) { $("trainmsg").textContent = "training failed: " + e.error; $("trainmsg").className = "bad"; return; }
  $("trainmsg").className = e.swapped ? "good" : "muted";
  $("trainmsg").textContent = `accuracy before ${acc(e.accuracy_before)} → after ${acc(e.accuracy_after)}` +
    ` (${e.gate || "held-out samples"}): ` + (e.swapped ? "the new head is in use" : "kept the old head") +
    (e.reason ? ` — ${e.reason}` : "");
}

$("train").addEventListener("click", async () => {
  progress(0, "training: asking the device…");
  const r = await post("/api/retrain", {wait: false, force: $("force").checked});
  if (!r.ok) { $("train").disabled = false; $("trainmsg").textContent = "not started: " + r.error; $("trainmsg").className = "bad"; }
});

$("rollback").addEventListener("click", async () => {
  const r = await post("/api/rollback", {});
  if (r.ok) toast("rolled back: now " + (r.data.head || "the previous head") + " (" + (r.data.labels || []).join(", ") + ")");
  else toast("roll back refused: " + r.error, true);
});

$("pause").addEventListener("click", async () => {
  const r = await post(S.paused ? "/api/resume" : "/api/pause", {});
  if (r.ok) { S.paused = r.data.paused; setState(); } else toast(r.error, true);
});

async function loadModels() {
  try {
    const res = await fetch("/api/models", {credentials: "same-origin"});
    const m = await res.json();
    const sel = $("modelsel");
    sel.replaceChildren(...m.models.filter((x) => x.task !== "digit").map((x) =>
      el("option", {value: x.name, text: `${x.name} ${x.version}` + (x.retrainable ? " (retrainable)" : "")})));
    sel.value = m.running.name;
    if (sel.value !== m.running.name) { sel.append(el("option", {value: m.running.name, text: m.running.package})); sel.value = m.running.name; }
    $("precsel").value = m.running.precision;
    $("train").hidden = $("rollback").hidden = $("force").parentNode.hidden = !m.running.retrainable;
  } catch (e) { /* shown as disconnected by the event stream */ }
}

$("modelform").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const r = await post("/api/set_model", {name: $("modelsel").value, precision: $("precsel").value});
  if (r.ok) toast("now running " + r.data.model); else toast("model not changed: " + r.error, true);
});

async function refreshStatus() {
  const r = await post("/api/status", {});
  if (!r.ok) return;
  S.labels = r.data.labels || [];
  onStats(r.data);
  if (r.data.count) onCount(r.data.count);
  loadModels();
}

// ---- the event log ------------------------------------------------------------------------
function describe(e) {
  switch (e.type) {
    case "count_changed": return `count ${e.count === null ? "none" : e.count}` + (e.previous !== null && e.previous !== undefined ? ` (was ${e.previous})` : "");
    case "sample_captured": return `sample “${e.label}” stored (${e.source})`;
    case "retrain_progress": return `training ${e.phase} ${Math.round(100 * e.progress)} %`;
    case "retrain_finished": return e.ok ? `trained: ${e.swapped ? "swapped in" : "kept the old head"}` : `training failed: ${e.error}`;
    case "model_swapped": return `model ${e.model}`;
    case "label_selected": return `label ${e.label} selected (${e.source})`;
    case "error": return `error (${e.where || e.error || "?"}): ${e.message || ""}`;
    default: return e.type;
  }
}

function logEvent(e) {
  if (e.type === "retrain_progress") return;
  const log = $("log");
  const t = e.ts ? new Date(e.ts).toLocaleTimeString() : "";
  log.prepend(el("li", {class: e.type === "error" ? "bad" : ""}, el("time", {text: t}), " " + describe(e)));
  while (log.children.length > 30) log.lastChild.remove();
}

connect();
setState();
