// Shared by the pages: POST with the CSRF token, a toast for answers.
"use strict";
const CSRF = document.querySelector('meta[name="csrf"]').content;

async function post(path, body, type) {
  const opts = {method: "POST", headers: {"X-CSRF-Token": CSRF}, credentials: "same-origin"};
  if (type) { opts.headers["Content-Type"] = type; opts.body = body; }
  else { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body || {}); }
  let res;
  try { res = await fetch(path, opts); } catch (e) { return {ok: false, error: "the device did not answer (" + e.message + ")"}; }
  try { return await res.json(); } catch (e) { return {ok: false, error: "HTTP " + res.status}; }
}

let toastTimer = null;
function toast(text, bad) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.className = bad ? "show bad" : "show";
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.className = ""; }, bad ? 6000 : 2500);
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function pct(p) { return (100 * p).toFixed(p >= 0.995 || p < 0.001 ? 0 : 1) + " %"; }
