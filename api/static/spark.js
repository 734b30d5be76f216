// A sparkline drawn by hand: one SVG polyline over a fixed time window (x = time,
// y = value), no chart library.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const WIDTH = 120; // the <svg> viewBox; CSS stretches it to the cell
const HEIGHT = 28;
const PAD = 3;

export function svg(tag, attributes) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

// points: [{time: ISO string, value: number}] in time order; startMs/spanMs: the window.
export function draw(target, points, startMs, spanMs) {
  target.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  target.setAttribute("preserveAspectRatio", "none");
  if (!points.length) {
    target.replaceChildren();
    return;
  }
  const values = points.map((p) => p.value);
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (low === high) { low -= 1; high += 1; } // a flat line in the middle, not at an edge
  const x = (p) => PAD +
    Math.max(0, Math.min(1, (Date.parse(p.time) - startMs) / spanMs)) * (WIDTH - 2 * PAD);
  const y = (p) => HEIGHT - PAD - ((p.value - low) / (high - low)) * (HEIGHT - 2 * PAD);
  const coords = points.map((p) => `${x(p).toFixed(1)},${y(p).toFixed(1)}`).join(" ");
  const last = points[points.length - 1];
  const lastX = x(last).toFixed(1);
  const lastY = y(last).toFixed(1);
  target.replaceChildren(
    svg("polyline", { points: coords, class: "line", "vector-effect": "non-scaling-stroke" }),
    // A zero-length line with round caps: a dot that stays round when the chart is
    // stretched (a circle would be scaled into an ellipse with the viewBox).
    svg("line", { x1: lastX, y1: lastY, x2: lastX, y2: lastY, class: "dot",
      "vector-effect": "non-scaling-stroke" }),
  );
}
