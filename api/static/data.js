// The Data tab: every variable's current value with a sparkline of its last hour, and a
// variable's history (time range, chart, table in pages, deleting a point).
"use strict";

import { call, devicePath } from "./api.js";
import { drawChart } from "./chart.js";
import {
  $, button, cell, el, formatValue, inputToIso, isNumber, replaceRows, timeElement,
} from "./dom.js";
import { draw as drawSpark } from "./spark.js";

const PAGE = 50;
const CHART_EVERY_MS = 10000; // the newest page refreshes with every poll, the chart slower
const SPARKS_EVERY_MS = 30000;
let ctx;
let sparks = null; // {deviceId, seen, at, result}: the last sparklines read
// The open history: variable, range (seconds back from now, or 0 for from/to), cursors
// of the pages shown so far (the first is ""), the page on screen, when the chart loaded.
let hist = null;

export function initData(context) {
  ctx = context;
  $("history-back").addEventListener("click", () => closeHistory(true));
  $("history-newer").addEventListener("click", () => turn(-1));
  $("history-older").addEventListener("click", () => turn(1));
  for (const node of document.querySelectorAll("[data-range]")) {
    node.addEventListener("click", () => setRange(Number(node.dataset.range), "", ""));
  }
  $("range-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const from = inputToIso($("range-from").value);
    const to = inputToIso($("range-to").value);
    if (!from && !to) return;
    setRange(0, from, to);
  });
  window.addEventListener("resize", () => { if (hist) hist.chartAt = 0; });
}

export async function refreshData(deviceId, variable) {
  if (variable && (!hist || hist.variable !== variable)) openHistory(variable);
  if (!variable && hist) closeHistory(false);
  if (hist) return refreshHistory(deviceId);
  // The sparklines (minute means of the last hour) cost InfluxDB a scan of that hour on
  // a busy device: read them again when a variable got new data, else every
  // SPARKS_EVERY_MS (the hour slides); the current values with every poll.
  const points = await call(devicePath(deviceId, "/variables"));
  const seen = points.map((p) => `${p.variable}\u0000${p.time}`).join("\u0001");
  if (!sparks || sparks.deviceId !== deviceId || sparks.seen !== seen
      || Date.now() - sparks.at > SPARKS_EVERY_MS) {
    const result = await call(devicePath(deviceId, "/sparks"));
    sparks = { deviceId, seen, at: Date.now(), result };
  }
  if (deviceId === ctx.state.deviceId && !hist) renderVariables(points, sparks.result);
}

function renderVariables(points, sparks) {
  $("variables-empty").hidden = points.length > 0;
  $("variables").hidden = points.length === 0;
  const start = Date.parse(sparks.start);
  const rows = points.map((point) => {
    const tr = document.createElement("tr");
    const name = button(point.variable, () => ctx.showHistory(point.variable), "link",
      `History of ${point.variable}`);
    name.dataset.key = point.variable;
    const series = sparks.series[point.variable];
    let spark = "—";
    if (series && series.length) {
      spark = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      spark.setAttribute("class", "spark");
      spark.setAttribute("role", "img");
      const values = series.map((p) => p.value);
      spark.setAttribute("aria-label", `${point.variable}, last hour: ${series.length} ` +
        `minute means from ${Math.min(...values)} to ${Math.max(...values)}`);
      drawSpark(spark, series, start, 3600 * 1000);
    }
    tr.append(
      cell("Variable", name, "name"),
      cell("Value", formatValue(point), isNumber(point.value) ? "value number" : "value"),
      cell("Unit", point.unit, "unit"),
      cell("Time", timeElement(point.time), "time"),
      cell("Last hour", spark, "spark-cell"),
    );
    return tr;
  });
  replaceRows($("variables"), rows);
}

// History

function openHistory(variable) {
  hist = { variable, range: 86400, from: "", to: "", cursors: [""], page: null, older: null,
    chartAt: 0 };
  $("variables-view").hidden = true;
  $("history").hidden = false;
  $("history-title").textContent = `History of ${variable}`;
  $("history-table").tBodies[0].replaceChildren();
  $("chart").replaceChildren();
  pressRange();
}

function closeHistory(byUser) {
  const variable = hist && hist.variable;
  hist = null;
  $("history").hidden = true;
  $("variables-view").hidden = false;
  if (byUser) {
    ctx.showHistory("");
    const back = [...$("variables").querySelectorAll("[data-key]")]
      .find((node) => node.dataset.key === variable);
    if (back) back.focus();
  }
}

function setRange(seconds, from, to) {
  hist.range = seconds;
  hist.from = from;
  hist.to = to;
  hist.cursors = [""];
  hist.page = null;
  hist.chartAt = 0;
  pressRange();
  ctx.refreshSoon();
}

function pressRange() {
  for (const node of document.querySelectorAll("[data-range]")) {
    node.setAttribute("aria-pressed", String(Number(node.dataset.range) === hist.range));
  }
}

function turn(step) {
  if (step > 0 && hist.older) hist.cursors.push(hist.older);
  if (step < 0 && hist.cursors.length > 1) hist.cursors.pop();
  hist.page = null;
  ctx.refreshSoon();
  (step > 0 ? $("history-older") : $("history-newer")).focus();
}

function rangeQuery() {
  if (hist.range) return { start_date: new Date(Date.now() - hist.range * 1000).toISOString() };
  const query = {};
  if (hist.from) query.start_date = hist.from;
  if (hist.to) query.end_date = hist.to;
  return query;
}

async function refreshHistory(deviceId) {
  const h = hist;
  const depth = h.cursors.length - 1;
  const range = rangeQuery();
  const query = { variable: h.variable, qty: PAGE, ...range };
  if (depth) query.before = h.cursors[depth];
  // The newest page of a moving range follows new data; a page of the past and a fixed
  // range load once. The chart is redrawn every CHART_EVERY_MS at most.
  const loadPage = !h.page || (depth === 0 && h.range > 0);
  const loadChart = h.chartAt === 0 || (h.range > 0 && Date.now() - h.chartAt > CHART_EVERY_MS);
  if (!loadPage && !loadChart) return;
  const [page, chart] = await Promise.all([
    loadPage ? call(devicePath(deviceId, "/history"), { query }) : null,
    loadChart ? call(devicePath(deviceId, "/chart"), { query: { variable: h.variable, ...range } })
      : null,
  ]);
  if (h !== hist || deviceId !== ctx.state.deviceId) return;
  if (page) {
    h.page = page;
    h.older = page.older;
    renderPage(deviceId, page.points, depth);
  }
  if (chart) {
    h.chartAt = Date.now();
    renderChart(chart);
    $("chart").dataset.range = String(h.range || "custom"); // what it shows (for tests)
  }
}

function renderPage(deviceId, points, depth) {
  $("history-empty").hidden = points.length > 0 || depth > 0;
  const rows = points.map((point) => {
    const tr = document.createElement("tr");
    const remove = button("Delete", () => removePoint(deviceId, point), "secondary small",
      `Delete point at ${point.time}`);
    remove.dataset.key = point.id;
    const when = timeElement(point.time);
    when.textContent = new Date(point.time).toLocaleString();
    tr.append(
      cell("Time", when),
      cell("Value", formatValue(point), isNumber(point.value) ? "value number" : "value"),
      cell("Unit", point.unit),
      cell("Group", point.group, "muted small"),
      cell("", remove),
    );
    return tr;
  });
  replaceRows($("history-table"), rows);
  $("history-newer").disabled = depth === 0;
  $("history-older").disabled = !hist.older;
  $("history-page").textContent = `Page ${depth + 1}`;
}

function renderChart(chart) {
  const start = Date.parse(chart.start);
  const end = Date.parse(chart.end);
  drawChart($("chart"), chart.points, start, end);
  const n = chart.points.length;
  $("chart-caption").textContent = chart.interval
    ? `${chart.variable}: ${n} means, one per ${describeSeconds(chart.interval)}`
    : `${chart.variable}: ${n} point${n === 1 ? "" : "s"}`;
  const values = chart.points.map((p) => p.value);
  $("chart-range").textContent = n
    ? `${new Date(start).toLocaleString()} – ${new Date(end).toLocaleString()} · min ` +
      `${Math.min(...values)} · max ${Math.max(...values)}`
    : "No numeric values in this range.";
}

function describeSeconds(seconds) {
  if (seconds % 86400 === 0) return seconds === 86400 ? "day" : `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return seconds === 3600 ? "hour" : `${seconds / 3600} hours`;
  if (seconds % 60 === 0) return seconds === 60 ? "minute" : `${seconds / 60} minutes`;
  return seconds === 1 ? "second" : `${seconds} seconds`;
}

async function removePoint(deviceId, point) {
  try {
    await call(devicePath(deviceId, "/data"), { method: "DELETE", query: { id: point.id } });
    ctx.setStatus(`Deleted the point of ${new Date(point.time).toLocaleString()}.`);
  } catch (error) {
    ctx.setStatus(`Cannot delete: ${error.message}`, true);
  }
  if (hist) {
    hist.page = null;
    hist.chartAt = 0;
  }
  ctx.refreshSoon();
}
