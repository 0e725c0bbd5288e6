// Drawing: the icicle, the hover box, breadcrumbs, the top table and the source listing.
// Every name, file and label is set with textContent, never parsed as markup.
import { formatValue, percent } from "./model.js";

const ROW = 18;       // px per stack level
const MIN_WIDTH = 0.5; // px: narrower frames are not drawn (their parent's width still counts them)

export function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

export function frameName(p, n) {
  return n.fi < 0 ? "root" : p.functions[n.fi][0];
}

function hue(name) {
  const module = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : name;
  let h = 0;
  for (let i = 0; i < module.length; i++) h = (h * 31 + module.charCodeAt(i)) >>> 0;
  return h;
}

// Draws `focus` at full width and its descendants under it; returns the drawn nodes by index.
export function drawFlame(box, p, focus, opts) {
  box.replaceChildren();
  const width = box.clientWidth || 1000;
  const drawn = [];
  if (!focus.abs) {
    box.append(el("p", { class: "empty" }, "no samples of this type"));
    return drawn;
  }
  const scale = width / focus.abs;
  const todo = [[focus, 0]];
  let depth = 0;
  const fragment = document.createDocumentFragment();
  while (todo.length) {
    const [n, x] = todo.pop();
    const w = n.abs * scale;
    const level = n.depth - focus.depth;
    depth = Math.max(depth, level);
    const name = frameName(p, n);
    const div = el("div", { class: frameClass(n, opts), "data-i": String(drawn.length),
                            "data-depth": String(level) }, name);
    div.style.left = x + "px";
    div.style.top = level * ROW + "px";
    div.style.width = Math.max(w - 1, 1) + "px";
    div.style.backgroundColor = colour(p, n, opts);
    fragment.append(div);
    drawn.push(n);
    let cx = x;
    const kids = [...n.children.values()].sort((a, b) => b.abs - a.abs);
    const next = [];
    for (const c of kids) {
      if (c.abs * scale >= MIN_WIDTH) next.push([c, cx]);
      cx += c.abs * scale;
    }
    for (let i = next.length - 1; i >= 0; i--) todo.push(next[i]);
  }
  box.style.height = (depth + 1) * ROW + "px";
  box.append(fragment);
  return drawn;
}

function frameClass(n, opts) {
  let c = "frame";
  if (opts.diff && n.fi >= 0) c += n.total > 0 ? " growth" : n.total < 0 ? " shrink" : "";
  if (opts.match && n.fi >= 0 && opts.match[n.fi]) c += " match";
  return c;
}

function colour(p, n, opts) {
  if (n.fi < 0) return "hsl(220, 10%, 80%)";
  if (opts.diff) {
    const share = Math.min(1, Math.abs(n.total) / (opts.maxDelta || 1));
    const light = 90 - 45 * share;
    return n.total > 0 ? `hsl(0, 85%, ${light}%)` : n.total < 0 ? `hsl(210, 85%, ${light}%)`
      : "hsl(0, 0%, 88%)";
  }
  return `hsl(${10 + (hue(frameName(p, n)) % 45)}, 80%, ${58 + (hue(frameName(p, n)) % 17)}%)`;
}

// The hover box: name, file:line, flat and cum with their shares of the total.
export function describe(box, p, n, t, total) {
  const unit = p.sample_types[t][1];
  const f = n.fi >= 0 ? p.functions[n.fi] : ["root", "", 0];
  box.replaceChildren(
    el("div", { class: "tip-name" }, f[0]),
    el("div", { class: "tip-file" }, f[1] ? `${f[1]}:${f[2]}` : "all samples"),
    el("div", {}, `flat ${formatValue(n.self, unit)} (${percent(n.self, total)})`),
    el("div", {}, `cum ${formatValue(n.total, unit)} (${percent(n.total, total)})`),
  );
}

export function drawCrumbs(box, p, focus, onPick) {
  const path = [];
  for (let n = focus; n; n = n.parent) path.unshift(n);
  box.replaceChildren(...path.map((n, i) => {
    const b = el("button", { type: "button", class: "crumb" }, frameName(p, n));
    b.addEventListener("click", () => onPick(n));
    return i ? [el("span", { class: "sep" }, " > "), b] : [b];
  }).flat());
}

const COLUMNS = [["flat", "flat"], ["flat%", "flat"], ["sum%", "sum"], ["cum", "cum"],
                 ["cum%", "cum"], ["name", "name"]];

// The top table, sorted by `sort` ({key, desc}); the header buttons ask `onSort` for another.
export function drawTop(table, p, t, rows, sort, onSort, onList) {
  const unit = p.sample_types[t][1];
  const head = el("tr");
  for (const [label, key] of COLUMNS) {
    const b = el("button", { type: "button", "data-sort": label }, label);
    b.addEventListener("click", () => onSort(key));
    head.append(el("th", {}, "")), head.lastChild.append(b);
  }
  const sorted = [...rows];
  const by = sort.key;
  if (by !== "sum") {
    sorted.sort((a, b) => {
      const x = by === "name" ? a.name.localeCompare(b.name) : Math.abs(a[by]) - Math.abs(b[by]);
      return sort.desc ? -x : x;
    });
  }
  const body = el("tbody");
  for (const row of sorted.slice(0, 2000)) {
    const tr = el("tr", { "data-fi": String(row.fi) });
    tr.append(el("td", {}, formatValue(row.flat, unit)), el("td", {}, percent(row.flat, row.total)),
              el("td", {}, percent(row.sum, row.total)), el("td", {}, formatValue(row.cum, unit)),
              el("td", {}, percent(row.cum, row.total)));
    const name = el("td", { class: "name" });
    const list = el("button", { type: "button", class: "list", title: "source" }, "list");
    list.addEventListener("click", () => onList(row.fi));
    name.append(list, el("span", {}, row.name));
    tr.append(name);
    body.append(tr);
  }
  table.replaceChildren(el("thead"), body);
  table.firstChild.append(head);
}

// `list`: the function's lines with flat and cum, from its first line to its last seen.
export function drawSource(box, p, t, fi, lines, values) {
  const unit = p.sample_types[t][1];
  const [name, file, start] = p.functions[fi];
  const seen = [...values.keys()];
  const first = Math.max(1, Math.min(start || Infinity, ...seen));
  const last = Math.min(lines.length, Math.max(first, ...seen) + 2);
  const table = el("table", { class: "source" });
  for (let n = first; n <= last; n++) {
    const v = values.get(n);
    const tr = el("tr", v ? { class: "hot" } : {});
    tr.append(el("td", {}, v ? formatValue(v.flat, unit) : "."),
              el("td", {}, v ? formatValue(v.cum, unit) : "."),
              el("td", { class: "lineno" }, String(n)), el("td", { class: "code" }, lines[n - 1] ?? ""));
    table.append(tr);
  }
  box.replaceChildren(el("h3", {}, `ROUTINE ======================== ${name} in ${file}`), table);
}
