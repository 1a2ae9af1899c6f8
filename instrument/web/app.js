// The GestureGAN control surface: one more client of the instrument's OSCQuery namespace. It reads the
// namespace over HTTP, then talks OSC over the WebSocket: binary OSC frames to control, LISTEN for the
// values it shows. Nothing here is wired to the engine any other way.
"use strict";

const P = "/gesturegan";
const COUNTERS = [  // telemetry rows shown, [path, label, whether a rise is an alarm]
  ["time_s", "engine time (s)", false], ["voices", "voices", false], ["underruns", "underruns", true],
  ["engine_underruns", "of which the engine's", true], ["device_underflows", "device xruns", true],
  ["late_events", "late events", true], ["late_triggers", "late clips", true], ["dropped_triggers", "dropped triggers", true],
  ["clips_generated", "clips generated", false], ["inference_ms_p50", "inference p50 (ms)", false],
];

const ui = { params: {}, nodes: {}, categories: [], ws: null, dragging: new Set(), retry: 500, clipAt: null, counterValues: {} };
const $ = (id) => document.getElementById(id);

function send(address, types, args) {
  if (ui.ws && ui.ws.readyState === WebSocket.OPEN) ui.ws.send(OSC.encode(address, types, args));
}

function setParam(id, value) {
  const node = ui.nodes[id];
  const t = node.TYPE;
  send(`${P}/param/${id}`, t === "T" ? (value ? "T" : "F") : t, [t === "i" ? Math.round(value) : value]);
}

function fmt(v, digits = 2) {
  return typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(digits)) : String(v);
}

function slider(parent, id, label) {
  const node = ui.nodes[id], range = (node.RANGE || [{}])[0];
  const row = document.createElement("label");
  const input = Object.assign(document.createElement("input"), { type: "range", min: range.MIN, max: range.MAX,
    step: node.TYPE === "i" ? 1 : (range.MAX - range.MIN) / 500, value: node.VALUE[0] });
  input.dataset.param = id;
  const out = document.createElement("output");
  out.textContent = fmt(node.VALUE[0]) + (node.UNIT ? " " + node.UNIT[0] : "");
  row.append(label || id, input, out);
  input.addEventListener("pointerdown", () => ui.dragging.add(id));
  input.addEventListener("pointerup", () => ui.dragging.delete(id));
  input.addEventListener("input", () => setParam(id, Number(input.value)));
  ui.params[id] = { show: (v) => { if (!ui.dragging.has(id)) input.value = v; out.textContent = fmt(v) + (node.UNIT ? " " + node.UNIT[0] : ""); } };
  parent.append(row);
}

function buildXY() {
  const pad = $("xy"), puck = $("puck");
  document.querySelectorAll(".corner").forEach((c) => { c.textContent = ui.categories[Number(c.dataset.corner)] || ""; });
  const pos = { x: ui.nodes.morph_x.VALUE[0], y: ui.nodes.morph_y.VALUE[0] };
  const draw = () => { puck.style.left = `${pos.x * 100}%`; puck.style.top = `${(1 - pos.y) * 100}%`; };
  const move = (e) => {
    const r = pad.getBoundingClientRect();
    pos.x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    pos.y = Math.min(1, Math.max(0, 1 - (e.clientY - r.top) / r.height));
    draw();
    send(`${P}/morph`, "ff", [pos.x, pos.y]);
  };
  pad.addEventListener("pointerdown", (e) => { pad.setPointerCapture(e.pointerId); ui.dragging.add("xy"); move(e); });
  pad.addEventListener("pointermove", (e) => { if (ui.dragging.has("xy")) move(e); });
  pad.addEventListener("pointerup", () => ui.dragging.delete("xy"));
  const follow = (axis) => ({ show: (v) => { if (!ui.dragging.has("xy")) { pos[axis] = v; draw(); } } });
  ui.params.morph_x = follow("x");
  ui.params.morph_y = follow("y");
  ui.params.mix_mode = { show: (v) => { $("mix-mode").textContent = `mix from: ${v}`; } };
  draw();
}

function buildPads() {
  ui.categories.forEach((cat) => {
    const pad = Object.assign(document.createElement("button"), { className: "pad", textContent: cat.replaceAll("_", " ") });
    pad.dataset.category = cat;
    pad.addEventListener("pointerdown", (e) => {
      const r = pad.getBoundingClientRect();
      const velocity = Math.min(1, Math.max(0.05, 1 - (e.clientY - r.top) / r.height));  // struck high = loud
      send(`${P}/trigger`, "sff", [cat, velocity, 0]);
      pad.classList.add("hit");
      setTimeout(() => pad.classList.remove("hit"), 120);
    });
    $("pads").append(pad);
  });
}

function buildCounters() {
  const table = $("counters");
  for (const [name, label] of COUNTERS) {
    const row = table.insertRow();
    row.dataset.status = name;
    row.insertCell().textContent = label;
    row.insertCell().textContent = "–";
  }
}

function showStatus(name, args) {
  if (name === "level_dbfs") {
    const db = args[0], pct = Math.max(0, Math.min(100, (db + 60) / 60 * 100));
    $("meter-fill").style.width = pct + "%";
    $("meter-text").textContent = db <= -119 ? "-inf dBFS" : `${db.toFixed(1)} dBFS`;
    return;
  }
  if (name === "mix") {  // the weights the engine plays now, wherever they come from (sliders, XY pad, path)
    $("mix-now").textContent = "playing: " + ui.categories.map((c, i) => `${c.replaceAll("_", " ")} ${fmt(args[i] ?? 0)}`).join(" · ");
    return;
  }
  if (name === "last_error") { $("last-error").textContent = args[0] ? "last error: " + args[0] : ""; return; }
  const row = document.querySelector(`#counters tr[data-status="${name}"]`);
  if (!row) return;
  const spec = COUNTERS.find((c) => c[0] === name);
  row.cells[1].textContent = fmt(args[0], name === "time_s" ? 1 : 2);
  if (spec[2] && args[0] > 0) row.classList.add("alarm");
}

function onMessage(data) {
  let msg;
  try { msg = OSC.decode(data); } catch (e) { console.warn("undecodable frame", e); return; }
  const a = msg.address;
  if (a.startsWith(`${P}/param/`)) {
    const id = a.slice(`${P}/param/`.length);
    if (ui.params[id]) ui.params[id].show(msg.args[0]);
    if (id === "layer") $("layer").checked = Boolean(msg.args[0]);
  } else if (a.startsWith(`${P}/status/`)) {
    showStatus(a.slice(`${P}/status/`.length), msg.args);
  } else if (a === `${P}/error`) {
    $("last-error").textContent = `${msg.args[0]}: ${msg.args[1]}`;
  }
}

function connect() {
  const ws = new WebSocket(`ws://${location.host}/`);
  ws.binaryType = "arraybuffer";
  ui.ws = ws;
  ws.onopen = () => {
    ui.retry = 500;
    $("connection").textContent = "connected";
    $("connection").classList.remove("down");
    document.body.classList.remove("offline");
    const listen = (path) => ws.send(JSON.stringify({ COMMAND: "LISTEN", DATA: path }));
    listen(`${P}/param`);
    for (const name of ["level_dbfs", "last_error", "mix", ...COUNTERS.map((c) => c[0])]) listen(`${P}/status/${name}`);
  };
  ws.onmessage = (e) => { if (typeof e.data !== "string") onMessage(e.data); };
  ws.onclose = () => {
    ui.ws = null;
    document.body.classList.add("offline");
    const s = $("connection");
    s.classList.add("down");
    s.textContent = `disconnected: reconnecting in ${(ui.retry / 1000).toFixed(1)} s`;
    setTimeout(connect, ui.retry);
    ui.retry = Math.min(5000, ui.retry * 2);
  };
}

async function pollSpectrogram() {
  if (ui.ws && ui.ws.readyState === WebSocket.OPEN) {
    try {
      const r = await fetch(`/ui/spectrogram?since=${ui.clipAt}`, { cache: "no-store" });
      if (r.status === 200) drawSpectrogram(await r.json());
    } catch (e) { /* the server is gone: the connection badge says so */ }
  }
  setTimeout(pollSpectrogram, 400);
}

function drawSpectrogram(s) {
  ui.clipAt = s.at;
  const canvas = $("spectrogram"), ctx = canvas.getContext("2d");
  const bytes = Uint8Array.from(atob(s.data), (c) => c.charCodeAt(0));
  const img = ctx.createImageData(s.frames, s.bins);
  for (let b = 0; b < s.bins; b++) {
    for (let f = 0; f < s.frames; f++) {
      const v = bytes[b * s.frames + f] / 255, o = ((s.bins - 1 - b) * s.frames + f) * 4;  // low frequencies at the bottom
      img.data[o] = 255 * Math.min(1, v * 1.6); img.data[o + 1] = 255 * Math.max(0, v * 1.4 - 0.4);
      img.data[o + 2] = 255 * Math.max(0, 0.6 - Math.abs(v - 0.3) * 2) + 60 * v; img.data[o + 3] = 255;
    }
  }
  const tmp = Object.assign(document.createElement("canvas"), { width: s.frames, height: s.bins });
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
  canvas.title = `${s.seconds.toFixed(2)} s, ${s.low_hz}–${Math.round(s.high_hz)} Hz (log)`;
}

async function main() {
  const [space, info] = await Promise.all([fetch(P).then((r) => r.json()), fetch("/?HOST_INFO").then((r) => r.json())]);
  for (const [id, node] of Object.entries(space.CONTENTS.param.CONTENTS)) ui.nodes[id] = node;
  ui.categories = space.CONTENTS.status.CONTENTS.categories.VALUE;
  $("model").textContent = `${info.NAME}: ${ui.categories.join(" · ")}` + (info.OSC_PORT ? ` — OSC on UDP ${info.OSC_PORT}` : "");
  buildXY();
  buildPads();
  for (const c of ui.categories) slider($("weights"), `weight.${c}`, c.replaceAll("_", " "));
  for (let i = 1; i <= 8; i++) slider($("macros"), `macro${i}`);
  for (const id of ["gain", "voices_db", "layer_db"]) slider($("output"), id);
  $("layer").checked = Boolean(ui.nodes.layer.VALUE[0]);
  $("layer").addEventListener("change", (e) => setParam("layer", e.target.checked));
  buildCounters();
  connect();
  pollSpectrogram();
}

main().catch((e) => { $("connection").textContent = "cannot read the namespace: " + e; });
