// The page: asks the listener for profiles (with the token when one is needed), keeps the
// baseline for diffs, and redraws on every choice.
import * as model from "./model.js";
import * as pprof from "./pprof.js";
import * as view from "./view.js";

// thread start-up frames every thread has: hidden by default (pprof -hide), editable
const DEFAULT_HIDE = "^threading\\.Thread\\.(_bootstrap|_bootstrap_inner|run)$";
const $ = (id) => document.getElementById(id);
const state = { profiles: [], shown: null, baseline: null, type: 0, focus: null, root: null,
                drawn: [], sort: { key: "flat", desc: true }, match: null };

// -- requests ---------------------------------------------------------------------------------
function token() { return sessionStorage.getItem("duragraph-pprof-token"); }

async function api(path) {
  for (;;) {
    const headers = token() ? { Authorization: "Bearer " + token() } : {};
    const response = await fetch(path, { headers, cache: "no-store" });
    if (response.status === 401) { await askToken(token() ? "that token was refused" : ""); continue; }
    if (!response.ok) throw new Error((await response.text()).trim() || response.statusText);
    return response;
  }
}

function askToken(error) {
  sessionStorage.removeItem("duragraph-pprof-token");
  const form = $("token-form");
  form.hidden = false;
  $("token-error").textContent = error;
  $("token").focus();
  return new Promise((resolve) => {
    form.onsubmit = (event) => {
      event.preventDefault();
      sessionStorage.setItem("duragraph-pprof-token", $("token").value);
      $("token").value = "";
      form.hidden = true;
      resolve();
    };
  });
}

// -- loading ----------------------------------------------------------------------------------
async function start() {
  $("hide").value = DEFAULT_HIDE;
  const list = await (await api("api/profiles")).json();
  state.profiles = list.profiles;
  $("seconds").max = String(list.max_seconds);
  $("profile").replaceChildren(...list.profiles.map((p) =>
    view.el("option", { value: p.name, title: p.description }, p.name)));
  // start on the first timed profile (the CPU profile), else the first
  $("profile").value = (list.profiles.find((p) => p.timed) || list.profiles[0]).name;
  pickerChanged();
  $("profile").addEventListener("change", pickerChanged);
  $("picker").addEventListener("submit", (e) => { e.preventDefault(); run(load); });
  $("baseline").addEventListener("click", () => run(takeBaseline));
  $("compare").addEventListener("click", () => run(compare));
  $("download").addEventListener("click", () => run(download));
  $("sample-type").addEventListener("change", () => { state.type = +$("sample-type").value; redraw(true); });
  $("search").addEventListener("input", () => redraw(false));
  $("hide").addEventListener("change", () => redraw(true));
  $("flame").addEventListener("click", onFrameClick);
  $("flame").addEventListener("mousemove", onHover);
  $("flame").addEventListener("mouseleave", () => { $("tip").hidden = true; });
  window.addEventListener("resize", () => state.root && redraw(false));
  setStatus("pick a profile and load it");
}

function pickerChanged() {
  const entry = state.profiles.find((p) => p.name === $("profile").value);
  $("seconds-field").hidden = !(entry && entry.timed);
  $("gc-field").hidden = !(entry && entry.gc);
}

async function run(action) {
  const buttons = ["load", "baseline", "compare"].map($);
  buttons.forEach((b) => { b.dataset.was = b.disabled; b.disabled = true; });
  try {
    await action();
  } catch (error) {
    setStatus("error: " + error.message);
  } finally {
    buttons.forEach((b) => { b.disabled = b.dataset.was === "true"; });
    $("compare").disabled = !state.baseline;
  }
}

async function fetchProfile() {
  const name = $("profile").value;
  const entry = state.profiles.find((p) => p.name === name);
  const query = new URLSearchParams({ name });
  const seconds = entry && entry.timed ? Math.max(1, +$("seconds").value || 10) : 0;
  if (seconds) query.set("seconds", String(seconds));
  if ($("gc").checked && !$("gc-field").hidden) query.set("gc", "1");
  const bar = $("progress");
  const began = performance.now();
  let timer = 0;
  if (seconds) {
    bar.hidden = false; bar.max = seconds * 1000; bar.value = 0;
    timer = setInterval(() => { bar.value = performance.now() - began; }, 100);
    setStatus(`collecting ${name} for ${seconds} s`);
  } else {
    setStatus(`fetching ${name}`);
  }
  try {
    const response = await api("api/profile?" + query);
    const bytes = await response.arrayBuffer();
    const decoding = performance.now();
    const profile = pprof.decode(await pprof.gunzip(bytes));
    profile.decode_ms = performance.now() - decoding;
    profile.id = response.headers.get("X-Profile-Id");
    profile.name = name;
    profile.fetch_ms = performance.now() - began;
    return profile;
  } finally {
    clearInterval(timer);
    bar.hidden = true;
  }
}

async function load() { show(await fetchProfile()); }

async function takeBaseline() {
  state.baseline = await fetchProfile();
  show(state.baseline);
  setStatus(`baseline: ${state.baseline.name} taken at ${new Date().toLocaleTimeString()}; ` +
            "compare later to see what grew");
}

async function compare() {
  const base = state.baseline;
  $("profile").value = base.name;
  pickerChanged();
  const after = await fetchProfile();
  const began = performance.now();
  const delta = model.diff(after, base);
  delta.fetch_ms = after.fetch_ms;
  delta.diff_ms = performance.now() - began;
  show(delta);
}

async function download() {
  const p = state.shown;
  const ids = p.diff ? [p.base_id, p.id] : [p.id];
  for (const id of ids) {
    const blob = await (await api("api/raw?id=" + encodeURIComponent(id))).blob();
    const a = view.el("a", { download: `${p.name}-${id}.pb.gz` });
    a.href = URL.createObjectURL(blob);
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }
}

// -- drawing ----------------------------------------------------------------------------------
function show(p) {
  state.shown = p;
  state.type = p.default_type;
  $("sample-type").replaceChildren(...p.sample_types.map(([type, unit], i) =>
    view.el("option", { value: String(i) }, `${type}/${unit}`)));
  $("sample-type").value = String(state.type);
  $("download").disabled = false;
  document.body.dataset.profileId = p.id;
  document.body.dataset.baseId = p.diff ? p.base_id : "";
  document.body.dataset.view = p.diff ? "diff" : "profile";
  document.body.dataset.fetchMs = (p.fetch_ms || 0).toFixed(1);
  document.body.dataset.decodeMs = (p.decode_ms || 0).toFixed(1);
  redraw(true);
}

function hideRe() {
  const text = $("hide").value.trim();
  try { return text ? new RegExp(text) : null; } catch { return null; }
}

function redraw(rebuild) {
  const p = state.shown;
  if (!p) return;
  const began = performance.now();
  if (rebuild) {
    state.root = model.buildTree(p, state.type, hideRe());
    state.focus = state.root;
    state.rows = model.topTable(p, state.type, hideRe());
    state.total = model.totalOf(p, state.type);
    $("source").replaceChildren();
  }
  const search = $("search").value;
  let re = null;
  try { re = search ? new RegExp(search) : null; } catch { re = null; }
  const share = re ? model.searchShare(p, state.type, re, hideRe()) : null;
  state.match = share ? share.match : null;
  const unit = p.sample_types[state.type][1];
  $("share").textContent = share
    ? `matched ${model.formatValue(share.hit, unit)} (${model.percent(share.hit, share.total)})` : "";
  const maxDelta = p.diff ? Math.max(1, ...[...state.root.children.values()].map((c) => Math.abs(c.total))) : 0;
  state.opts = { diff: !!p.diff, match: state.match, maxDelta };
  drawView();
  void $("flame").offsetHeight; // layout now, so the time below includes it
  const ms = performance.now() - began;
  document.body.dataset.renderMs = ms.toFixed(1);
  const what = p.diff ? `${p.name}: growth since the baseline (red grew, blue shrank)` : p.name;
  setStatus(`${what}: ${p.stacks.length} stacks, ${model.formatValue(state.root.total, unit)} ` +
            `total; fetched in ${(p.fetch_ms || 0).toFixed(0)} ms, drawn in ${ms.toFixed(0)} ms` +
            (p.comments.length ? ` - ${p.comments.join("; ")}` : ""));
}

function drawView() {
  const p = state.shown;
  state.drawn = view.drawFlame($("flame"), p, state.focus, state.opts);
  view.drawCrumbs($("crumbs"), p, state.focus, zoom);
  view.drawTop($("top"), p, state.type, state.rows, state.sort, sortBy, listSource);
}

function zoom(n) { state.focus = n; drawView(); }

function sortBy(key) {
  const same = state.sort.key === key;
  state.sort = { key, desc: same ? !state.sort.desc : key !== "name" };
  drawView();
}

function nodeAt(event) {
  const div = event.target.closest(".frame");
  return div ? state.drawn[+div.dataset.i] : null;
}

function onFrameClick(event) {
  const n = nodeAt(event);
  if (n) zoom(n);
}

function onHover(event) {
  const n = nodeAt(event);
  const tip = $("tip");
  if (!n) { tip.hidden = true; return; }
  view.describe(tip, state.shown, n, state.type, state.total);
  tip.hidden = false;
  tip.style.left = Math.min(event.clientX + 12, window.innerWidth - tip.offsetWidth - 4) + "px";
  tip.style.top = event.clientY + 14 + "px";
}

async function listSource(fi) {
  const p = state.shown;
  const file = p.functions[fi][1];
  const id = p.id;
  await run(async () => {
    const answer = await (await api(`api/source?id=${encodeURIComponent(id)}&file=${encodeURIComponent(file)}`)).json();
    view.drawSource($("source"), p, state.type, fi, answer.lines, model.lineValues(p, state.type, fi));
    $("source").scrollIntoView();
  });
}

function setStatus(text) { $("status").textContent = text; }

start().catch((error) => setStatus("error: " + error.message));
