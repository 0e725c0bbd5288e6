// The served pprof bytes (gzipped profile.proto) -> the plain data the page draws. Decoding
// here keeps the listener's work to what `curl .../heap` costs, and the page reads exactly the
// bytes `go tool pprof` reads.

export async function gunzip(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

class Reader {
  constructor(bytes, start = 0, end = bytes.length) { this.b = bytes; this.i = start; this.end = end; }
  more() { return this.i < this.end; }
  // int64 as a Number: exact below 2**53; two's complement for negatives (diffs, deltas)
  varint() {
    const b = this.b;
    let lo = 0, hi = 0, shift = 0, byte;
    do {
      byte = b[this.i++];
      if (shift < 28) lo |= (byte & 0x7f) << shift;
      else if (shift === 28) { lo |= (byte & 0x0f) << 28; hi |= (byte & 0x7f) >> 4; }
      else hi |= (byte & 0x7f) << (shift - 32);
      shift += 7;
    } while (byte & 0x80);
    lo >>>= 0;
    return hi & 0x80000000 ? -((~hi >>> 0) * 4294967296 + ((~lo >>> 0) + 1)) : (hi >>> 0) * 4294967296 + lo;
  }
  // each field of a message: onField(number, wireType, reader) reads or skips it
  fields(onField) {
    while (this.more()) {
      const key = this.varint();
      const field = Math.floor(key / 8), wire = key & 7;
      if (wire === 2) {
        const len = this.varint();
        const sub = new Reader(this.b, this.i, this.i + len);
        this.i += len;
        onField(field, 2, sub);
      } else if (wire === 0) {
        onField(field, 0, this);
      } else if (wire === 1) { onField(field, 1, null); this.i += 8; }
      else if (wire === 5) { onField(field, 5, null); this.i += 4; }
      else throw new Error("bad protobuf wire type " + wire);
    }
  }
}

// a repeated integer field, packed or not
function ints(wire, r, out) {
  if (wire === 2) while (r.more()) out.push(r.varint());
  else out.push(r.varint());
}

function message(r, handlers) {
  const m = {};
  r.fields((f, wire, sub) => {
    const h = handlers[f];
    if (h) h(m, wire, sub);
    else if (wire === 0) sub.varint();
  });
  return m;
}

const num = (name) => (m, w, r) => { m[name] = r.varint(); };
const list = (name) => (m, w, r) => { ints(w, r, m[name] || (m[name] = [])); };

export function decode(bytes) {
  const text = new TextDecoder();
  const strings = [], sampleTypes = [], samples = [], locations = [], functions = [];
  const p = { comment: [] };
  const valueType = (r) => message(r, { 1: num("type"), 2: num("unit") });
  new Reader(bytes).fields((f, wire, r) => {
    if (f === 6) strings.push(text.decode(r.b.subarray(r.i, r.end)));
    else if (f === 1) sampleTypes.push(valueType(r));
    else if (f === 2) samples.push(message(r, { 1: list("loc"), 2: list("value"),
      3: (m, w, s) => (m.labels || (m.labels = [])).push(message(s, { 1: num("key"), 2: num("str"), 3: num("num"), 4: num("unit") })) }));
    else if (f === 4) locations.push(message(r, { 1: num("id"),
      4: (m, w, s) => (m.lines || (m.lines = [])).push(message(s, { 1: num("fn"), 2: num("line") })) }));
    else if (f === 5) functions.push(message(r, { 1: num("id"), 2: num("name"), 4: num("file"), 5: num("start") }));
    else if (f === 11) p.periodType = valueType(r);
    else if (f === 13) ints(wire, r, p.comment);
    else if (wire === 0 && [9, 10, 12, 14].includes(f)) p[f] = r.varint();
    else if (wire === 0) r.varint();
  });
  return build(strings, sampleTypes, samples, locations, functions, p);
}

function build(strings, sampleTypes, samples, locations, functions, p) {
  const s = (i) => strings[i || 0] || "";
  const out = { functions: [], frames: [], stacks: [], values: [], labels: [], label_sets: [""] };
  const fnIndex = new Map();
  for (const f of functions) { fnIndex.set(f.id, out.functions.length); out.functions.push([s(f.name), s(f.file), f.start || 0]); }
  const frameIndex = new Map(), locFrames = new Map();
  for (const loc of locations) {
    const ids = [];
    for (const line of loc.lines || []) {
      const fi = fnIndex.get(line.fn);
      if (fi === undefined) continue;
      const key = fi + ":" + (line.line || 0);
      let id = frameIndex.get(key);
      if (id === undefined) { id = out.frames.length; frameIndex.set(key, id); out.frames.push([fi, line.line || 0]); }
      ids.push(id);
    }
    locFrames.set(loc.id, ids);
  }
  const labelIndex = new Map([["", 0]]);
  for (const sample of samples) {
    const stack = [];
    for (const loc of sample.loc || []) for (const id of locFrames.get(loc) || []) stack.push(id);
    out.stacks.push(stack);
    const values = sample.value || [];
    while (values.length < sampleTypes.length) values.push(0);
    out.values.push(values);
    const key = (sample.labels || []).map((l) => s(l.key) + "=" + (l.str ? s(l.str) : (l.num || 0) + s(l.unit)))
      .sort().join(",");
    let li = labelIndex.get(key);
    if (li === undefined) { li = out.label_sets.length; labelIndex.set(key, li); out.label_sets.push(key); }
    out.labels.push(li);
  }
  const types = sampleTypes.map((t) => [s(t.type), s(t.unit)]);
  const wanted = s(p[14]);
  const named = types.findIndex((t) => t[0] === wanted);
  return { ...out, sample_types: types, default_type: wanted && named >= 0 ? named : Math.max(types.length - 1, 0),
           period: [s(p.periodType && p.periodType.type), s(p.periodType && p.periodType.unit), p[12] || 0],
           time_nanos: p[9] || 0, duration_nanos: p[10] || 0, comments: p.comment.map(s) };
}
