// The live cluster page: polls /clusterz (clusterview.py) every second and draws the servers,
// the routes between them and their message rates. Plain DOM and SVG, no libraries.
"use strict";

const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const prev = new Map(); // server id -> {t, in_msgs, out_msgs, in_bytes}
const rates = new Map(); // server id -> {inMsgs, outMsgs, inBytes}
const lastState = new Map(); // server id -> state, for the event list

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function human(n, unit) {
  if (n === undefined || n === null || Number.isNaN(n)) return "-";
  const steps = ["", "K", "M", "G", "T"];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < steps.length - 1) { n /= 1000; i++; }
  const digits = n < 10 && i > 0 ? 1 : 0;
  return n.toFixed(digits) + steps[i] + (unit || "");
}

function stateClass(state) {
  return state === "lame duck" ? "lame" : state;
}

function updateRates(servers, now) {
  for (const s of servers) {
    if (s.state === "down") { rates.delete(s.id); continue; }
    const p = prev.get(s.id);
    const cur = { t: now, in_msgs: s.in_msgs || 0, out_msgs: s.out_msgs || 0, in_bytes: s.in_bytes || 0 };
    if (p && now > p.t && cur.in_msgs >= p.in_msgs) {
      const dt = (now - p.t) / 1000;
      rates.set(s.id, {
        inMsgs: (cur.in_msgs - p.in_msgs) / dt,
        outMsgs: (cur.out_msgs - p.out_msgs) / dt,
        inBytes: (cur.in_bytes - p.in_bytes) / dt,
      });
    }
    prev.set(s.id, cur);
  }
}

function logEvent(text) {
  const list = document.getElementById("events");
  const li = el("li");
  li.appendChild(el("time", {}, new Date().toLocaleTimeString()));
  li.appendChild(document.createTextNode(text));
  list.insertBefore(li, list.firstChild);
  while (list.children.length > 100) list.removeChild(list.lastChild);
}

function noteChanges(servers) {
  const seen = new Set();
  for (const s of servers) {
    seen.add(s.id);
    const before = lastState.get(s.id);
    if (before === undefined) {
      if (lastState.size > 0 || servers.length === 1) logEvent(`${s.name} joined (${s.state})`);
    } else if (before !== s.state) {
      const what = { down: "is down", up: before === "down" ? "is back" : "is up", "lame duck": "entered lame duck mode" };
      logEvent(`${s.name} ${what[s.state] || s.state}`);
    }
    lastState.set(s.id, s.state);
  }
  for (const id of [...lastState.keys()]) if (!seen.has(id)) lastState.delete(id);
}

function drawGraph(servers, routes) {
  const svg = document.getElementById("graph");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const w = 640, h = 440, cx = w / 2, cy = h / 2 - 6;
  const r = servers.length <= 1 ? 0 : Math.min(w, h) / 2 - 80;
  const pos = new Map();
  servers.forEach((s, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(servers.length, 1);
    pos.set(s.id, [cx + r * Math.cos(a), cy + r * Math.sin(a)]);
  });
  let drawn = 0;
  for (const e of routes) {
    const a = pos.get(e.a), b = pos.get(e.b);
    if (!a || !b) continue;
    drawn++;
    svg.appendChild(el("svg:line", { class: "edge", x1: a[0], y1: a[1], x2: b[0], y2: b[1] }));
    if (e.rtt) {
      svg.appendChild(el("svg:text", { class: "edge-label", x: (a[0] + b[0]) / 2, y: (a[1] + b[1]) / 2 - 4 }, e.rtt));
    }
  }
  svg.setAttribute("data-routes", String(drawn));
  for (const s of servers) {
    const [x, y] = pos.get(s.id);
    const g = el("svg:g", { class: `node ${stateClass(s.state)}${s.self ? " self" : ""}`, "data-id": s.id, "data-state": s.state });
    g.appendChild(el("svg:circle", { cx: x, cy: y, r: 26 }));
    g.appendChild(el("svg:text", { class: "count", x: x, y: y + 5 }, s.state === "down" ? "-" : String(s.connections ?? 0)));
    g.appendChild(el("svg:text", { class: "name", x: x, y: y + 46 }, s.name.length > 20 ? s.name.slice(0, 19) + "…" : s.name));
    const rt = rates.get(s.id);
    const n = s.connections ?? 0;
    const sub = s.state === "down" ? "down" : `${n} client${n === 1 ? "" : "s"} · ${human(rt ? rt.inMsgs : 0)} msg/s in`;
    g.appendChild(el("svg:text", { x: x, y: y + 62 }, sub));
    if (s.state === "lame duck") g.appendChild(el("svg:text", { class: "flag", x: x, y: y - 34 }, "lame duck"));
    svg.appendChild(g);
  }
}

function drawTable(servers) {
  const table = document.getElementById("servers");
  const body = table.tBodies[0];
  while (body.firstChild) body.removeChild(body.firstChild);
  let up = 0;
  for (const s of servers) {
    if (s.state !== "down") up++;
    const rt = rates.get(s.id);
    const tr = el("tr", { class: stateClass(s.state), "data-id": s.id, "data-state": s.state });
    const pill = el("td");
    pill.appendChild(el("span", { class: `pill ${stateClass(s.state)}` }, s.state));
    tr.appendChild(pill);
    const name = el("td", {}, s.name + (s.self ? " *" : ""));
    tr.appendChild(name);
    const impl = el("td");
    impl.appendChild(document.createTextNode(s.implementation || "?"));
    impl.appendChild(el("small", {}, s.version ? ` ${s.version}` : ""));
    tr.appendChild(impl);
    const down = s.state === "down";
    const cells = [s.connections, s.subscriptions, s.routes, rt && rt.inMsgs, rt && rt.outMsgs, rt && rt.inBytes, s.slow_consumers];
    cells.forEach((v, i) => tr.appendChild(el("td", {}, down ? "-" : i >= 3 && i <= 5 ? human(v, i === 5 ? "B" : "") : v ?? "-")));
    tr.appendChild(el("td", {}, down ? "-" : s.uptime || "-"));
    body.appendChild(tr);
  }
  table.setAttribute("data-count", String(up));
}

function drawTotals(servers) {
  let clients = 0, inM = 0, outM = 0, inB = 0, slow = 0, up = 0;
  for (const s of servers) {
    if (s.state === "down") continue;
    up++;
    clients += s.connections || 0;
    slow += s.slow_consumers || 0;
    const rt = rates.get(s.id);
    if (rt) { inM += rt.inMsgs; outM += rt.outMsgs; inB += rt.inBytes; }
  }
  document.getElementById("t-servers").textContent = `${up} / ${servers.length}`;
  document.getElementById("t-clients").textContent = String(clients);
  document.getElementById("t-in").textContent = human(inM);
  document.getElementById("t-out").textContent = human(outM);
  document.getElementById("t-bytes").textContent = human(inB, "B");
  document.getElementById("t-slow").textContent = String(slow);
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const resp = await fetch("clusterz", { cache: "no-store" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const z = await resp.json();
    const now = Date.now();
    updateRates(z.servers, now);
    noteChanges(z.servers);
    document.getElementById("cluster-name").textContent = z.cluster || "(no cluster)";
    drawGraph(z.servers, z.routes);
    drawTable(z.servers);
    drawTotals(z.servers);
    status.textContent = `updated ${new Date(now).toLocaleTimeString()} · via ${z.source} of ${z.server_name}`;
    status.classList.remove("stale");
    document.body.setAttribute("data-polls", String(Number(document.body.getAttribute("data-polls") || 0) + 1));
  } catch (err) {
    status.textContent = `monitoring port unreachable (${err.message}); retrying`;
    status.classList.add("stale");
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
