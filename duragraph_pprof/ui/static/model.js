// Plain data work on a decoded profile: call trees, the top table, diffs, search share and
// per-line values. No DOM here, so it is the same maths whatever draws it.

// A function is its name and file, as `go tool pprof` groups nodes by default.
export function functionKey(p, fi) {
  const f = p.functions[fi];
  return f[0] + "\u0000" + f[1];
}

// Function indices whose name matches `re` (pprof -hide: the frames are skipped).
function hiddenSet(p, re) {
  const hidden = new Uint8Array(p.functions.length);
  if (re) p.functions.forEach((f, i) => { hidden[i] = re.test(f[0]) ? 1 : 0; });
  return hidden;
}

// The call tree, root first; `abs` (the sum of |value|) sizes a frame, `total` is signed.
export function buildTree(p, t, hideRe) {
  const hidden = hiddenSet(p, hideRe);
  const root = node(-1, null);
  const frames = p.frames;
  for (let s = 0; s < p.stacks.length; s++) {
    const v = p.values[s][t];
    if (!v) continue;
    const a = Math.abs(v);
    const stack = p.stacks[s];
    let n = root;
    n.total += v; n.abs += a;
    for (let i = stack.length - 1; i >= 0; i--) {
      const fi = frames[stack[i]][0];
      if (hidden[fi]) continue;
      let c = n.children.get(fi);
      if (!c) { c = node(fi, n); n.children.set(fi, c); }
      c.total += v; c.abs += a;
      n = c;
    }
    n.self += v;
  }
  return root;
}

function node(fi, parent) {
  return { fi, parent, children: new Map(), total: 0, abs: 0, self: 0,
           depth: parent ? parent.depth + 1 : 0 };
}

// pprof's total: the sum of |value| over samples.
export function totalOf(p, t) {
  let total = 0;
  for (const v of p.values) total += Math.abs(v[t]);
  return total;
}

// `go tool pprof -top`: flat (leaf) and cum (once per sample) by function.
export function topTable(p, t, hideRe) {
  const hidden = hiddenSet(p, hideRe);
  // one row per function key; `stamp` marks the rows a sample already counted, without a Set
  const rowOf = new Int32Array(p.functions.length);
  const byKey = new Map();
  const list = [];
  p.functions.forEach((f, fi) => {
    const key = functionKey(p, fi);
    let r = byKey.get(key);
    if (r === undefined) { r = list.length; byKey.set(key, r); list.push({ fi, name: f[0], flat: 0, cum: 0 }); }
    rowOf[fi] = r;
  });
  const stamp = new Int32Array(list.length).fill(-1);
  const used = new Uint8Array(list.length);
  const frames = p.frames;
  for (let s = 0; s < p.stacks.length; s++) {
    const v = p.values[s][t];
    if (!v) continue;
    let leaf = true;
    for (const frame of p.stacks[s]) {
      const fi = frames[frame][0];
      if (hidden[fi]) continue;
      const r = rowOf[fi];
      const row = list[r];
      used[r] = 1;
      if (leaf) { row.flat += v; leaf = false; }
      if (stamp[r] !== s) { row.cum += v; stamp[r] = s; }
    }
  }
  const rows = list.filter((_, r) => used[r]);
  rows.sort((a, b) => Math.abs(b.flat) - Math.abs(a.flat) || Math.abs(b.cum) - Math.abs(a.cum)
    || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let sum = 0;
  const total = totalOf(p, t);
  for (const row of rows) { sum += row.flat; row.sum = sum; row.total = total; }
  return rows;
}

// The share of samples with a frame whose function matches `re` (each sample once).
export function searchShare(p, t, re, hideRe) {
  const hidden = hiddenSet(p, hideRe);
  const match = new Uint8Array(p.functions.length);
  p.functions.forEach((f, i) => { match[i] = !hidden[i] && re.test(f[0]) ? 1 : 0; });
  let hit = 0;
  for (let s = 0; s < p.stacks.length; s++) {
    const v = p.values[s][t];
    if (v && p.stacks[s].some((fr) => match[p.frames[fr][0]])) hit += Math.abs(v);
  }
  return { hit, total: totalOf(p, t), match };
}

// after - base by stack and labels, as `go tool pprof -base` merges; all-zero samples dropped.
export function diff(after, base) {
  const out = { ...after, functions: [], frames: [], stacks: [], values: [], labels: [],
                label_sets: [], diff: true, base_id: base.id };
  const fIndex = new Map(), frIndex = new Map(), lIndex = new Map();
  const acc = new Map();
  const width = after.sample_types.length;
  const add = (p, sign) => {
    for (let s = 0; s < p.stacks.length; s++) {
      const ids = p.stacks[s].map((fr) => frameId(p, fr));
      const label = p.label_sets[p.labels[s]] || "";
      const key = ids.join(",") + "|" + label;
      let entry = acc.get(key);
      if (!entry) { entry = { ids, label, values: new Array(width).fill(0) }; acc.set(key, entry); }
      p.values[s].forEach((v, i) => { if (i < width) entry.values[i] += sign * v; });
    }
  };
  const frameId = (p, fr) => {
    const [fi, line] = p.frames[fr];
    const f = p.functions[fi];
    const fk = f[0] + "\u0000" + f[1] + "\u0000" + f[2];
    let nf = fIndex.get(fk);
    if (nf === undefined) { nf = out.functions.length; fIndex.set(fk, nf); out.functions.push(f); }
    const k = nf + ":" + line;
    let id = frIndex.get(k);
    if (id === undefined) { id = out.frames.length; frIndex.set(k, id); out.frames.push([nf, line]); }
    return id;
  };
  add(after, 1);
  add(base, -1);
  for (const entry of acc.values()) {
    if (!entry.values.some((v) => v !== 0)) continue;
    let li = lIndex.get(entry.label);
    if (li === undefined) { li = out.label_sets.length; lIndex.set(entry.label, li); out.label_sets.push(entry.label); }
    out.stacks.push(entry.ids); out.values.push(entry.values); out.labels.push(li);
  }
  return out;
}

// `list`: per line of one function, flat (leaf at that line) and cum (once per sample).
export function lineValues(p, t, fi) {
  const key = functionKey(p, fi);
  const lines = new Map();
  for (let s = 0; s < p.stacks.length; s++) {
    const v = p.values[s][t];
    if (!v) continue;
    const seen = new Set();
    p.stacks[s].forEach((fr, i) => {
      const [f, line] = p.frames[fr];
      if (functionKey(p, f) !== key) return;
      let row = lines.get(line);
      if (!row) { row = { flat: 0, cum: 0 }; lines.set(line, row); }
      if (i === 0) row.flat += v;
      if (!seen.has(line)) { row.cum += v; seen.add(line); }
    });
  }
  return lines;
}

// Values as pprof prints them: 1.50s, 12.3MB, plain counts.
export function formatValue(v, unit) {
  const sign = v < 0 ? "-" : "";
  const a = Math.abs(v);
  const scaled = (steps) => {
    let [div, name] = steps[0];
    for (const step of steps) if (a >= step[0]) [div, name] = step;
    const x = a / div;
    return sign + (x >= 100 || Number.isInteger(x) ? x.toFixed(0) : x.toFixed(2)) + name;
  };
  if (unit === "nanoseconds") return scaled([[1, "ns"], [1e3, "us"], [1e6, "ms"], [1e9, "s"]]);
  if (unit === "bytes") return scaled([[1, "B"], [1024, "kB"], [1 << 20, "MB"], [1 << 30, "GB"]]);
  return sign + String(a);
}

export function percent(v, total) {
  return total ? (100 * v / total).toFixed(2) + "%" : "0.00%";
}
