// The digit canvas: white strokes on black (as MNIST), sent as a PNG when the pointer lifts.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
let drawing = false, last = null, dirty = false;

function clear() {
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height);
  dirty = false;
  document.getElementById("top").textContent = "–";
  showBars(null);
}

function point(ev) {
  const r = pad.getBoundingClientRect();
  return [(ev.clientX - r.left) * pad.width / r.width, (ev.clientY - r.top) * pad.height / r.height];
}

pad.addEventListener("pointerdown", (ev) => {
  ev.preventDefault();
  pad.setPointerCapture(ev.pointerId);
  drawing = true; last = point(ev);
  ctx.fillStyle = "#fff"; ctx.beginPath(); ctx.arc(last[0], last[1], 9, 0, 2 * Math.PI); ctx.fill();
  dirty = true;
});
pad.addEventListener("pointermove", (ev) => {
  if (!drawing) return;
  const p = point(ev);
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
  last = p;
});
function end() { if (drawing) { drawing = false; if (dirty) classify(); } }
pad.addEventListener("pointerup", end);
pad.addEventListener("pointercancel", end);

function showBars(r) {
  const box = document.getElementById("bars");
  if (!r) { box.replaceChildren(); return; }
  box.replaceChildren(...r.labels.map((l, i) => {
    const p = r.scores[i];
    const fill = el("span", {class: "fill"}); fill.style.width = (100 * p).toFixed(1) + "%";
    return el("div", {class: "bar" + (l === r.label ? " top" : ""), "data-label": l},
      el("span", {class: "name", text: l}), el("span", {class: "track"}, fill), el("span", {class: "val", text: pct(p)}));
  }));
}

async function classify() {
  const blob = await new Promise((ok) => pad.toBlob(ok, "image/png"));
  const prec = document.getElementById("prec").value;
  const r = await post("/api/digits?precision=" + encodeURIComponent(prec), blob, "image/png");
  if (!r.ok) { toast("not classified: " + r.error, true); return; }
  document.getElementById("top").textContent = r.label;
  document.getElementById("info").textContent =
    `${r.model} · ${pct(r.confidence)} · ${r.timing_ms.total.toFixed(1)} ms on the device (invoke ${r.timing_ms.invoke.toFixed(1)} ms)`;
  showBars(r);
}

document.getElementById("clear").addEventListener("click", clear);
document.getElementById("prec").addEventListener("change", () => { if (dirty) classify(); });
clear();
