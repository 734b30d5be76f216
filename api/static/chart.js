// The history chart: a line over a time range with value and time labels, drawn at the
// element's own pixel width (so text is never stretched), no chart library.
"use strict";

import { svg } from "./spark.js";

const HEIGHT = 200;
const LEFT = 56;
const RIGHT = 12;
const TOP = 10;
const BOTTOM = 24;

function label(value) {
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return value.toExponential(2);
  return String(Math.round(value * 1000) / 1000);
}

function timeLabel(ms, spanMs) {
  const when = new Date(ms);
  if (spanMs < 2 * 86400 * 1000) {
    return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return when.toLocaleDateString([], { month: "short", day: "numeric" });
}

// points: [{time, value}] ascending; startMs..endMs: the range shown.
export function drawChart(target, points, startMs, endMs) {
  const width = Math.max(240, Math.round(target.clientWidth || 640));
  target.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
  target.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const spanMs = Math.max(1, endMs - startMs);
  const plotW = width - LEFT - RIGHT;
  const plotH = HEIGHT - TOP - BOTTOM;
  const nodes = [];
  let low = 0;
  let high = 1;
  if (points.length) {
    const values = points.map((p) => p.value);
    low = Math.min(...values);
    high = Math.max(...values);
    if (low === high) { low -= 1; high += 1; }
  }
  const x = (ms) => LEFT + Math.max(0, Math.min(1, (ms - startMs) / spanMs)) * plotW;
  const y = (v) => TOP + plotH - ((v - low) / (high - low)) * plotH;
  for (const v of [low, (low + high) / 2, high]) {
    nodes.push(svg("line", { x1: LEFT, x2: width - RIGHT, y1: y(v), y2: y(v), class: "grid" }));
    const text = svg("text", { x: LEFT - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" });
    text.textContent = label(v);
    nodes.push(text);
  }
  for (const [ms, anchor] of [[startMs, "start"], [(startMs + endMs) / 2, "middle"], [endMs, "end"]]) {
    const text = svg("text", { x: x(ms), y: HEIGHT - 6, class: "axis", "text-anchor": anchor });
    text.textContent = timeLabel(ms, spanMs);
    nodes.push(text);
  }
  if (points.length) {
    const coords = points.map((p) => `${x(Date.parse(p.time)).toFixed(1)},${y(p.value).toFixed(1)}`);
    nodes.push(svg("polyline", { points: coords.join(" "), class: "line" }));
    if (points.length <= 60) {
      for (const c of coords) {
        const [cx, cy] = c.split(",");
        nodes.push(svg("circle", { cx, cy, r: 2.5, class: "mark" }));
      }
    }
  }
  target.replaceChildren(...nodes);
}
