// The Export tab: a time range and the variables to include, as CSV or JSON lines. The
// download goes through a short-lived signed link, so the browser streams it to disk
// (the admin token cannot ride along on a plain download).
"use strict";

import { call, devicePath } from "./api.js";
import { $, el, inputToIso } from "./dom.js";

let ctx;

export function initExport(context) {
  ctx = context;
  $("export-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const format = (event.submitter && event.submitter.dataset.format) || "csv";
    download(format);
  });
}

export async function refreshExport(deviceId) {
  const points = await call(devicePath(deviceId, "/variables"));
  if (deviceId !== ctx.state.deviceId) return;
  const box = $("export-variables");
  const chosen = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
  const known = [...box.querySelectorAll("input")].map((i) => i.value);
  const names = points.map((p) => p.variable);
  if (known.length === names.length && known.every((v, i) => v === names[i])) return;
  box.replaceChildren(...names.map((name, i) => {
    const id = `export-variable-${i}`;
    const input = el("input");
    input.type = "checkbox";
    input.id = id;
    input.value = name;
    input.checked = chosen.has(name);
    const label = el("label", name);
    label.htmlFor = id;
    const row = el("div", undefined, "choice");
    row.append(input, label);
    return row;
  }));
  if (!names.length) box.append(el("p", "No variables yet.", "muted"));
}

async function download(format) {
  const query = [["format", format]];
  const from = inputToIso($("export-from").value);
  const to = inputToIso($("export-to").value);
  if (from) query.push(["start_date", from]);
  if (to) query.push(["end_date", to]);
  for (const input of $("export-variables").querySelectorAll("input:checked")) {
    query.push(["variable", input.value]);
  }
  try {
    const link = await call(devicePath(ctx.state.deviceId, "/export-link"),
      { method: "POST", query });
    const anchor = el("a");
    anchor.href = link.url;
    anchor.download = "";
    anchor.hidden = true;
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    ctx.setStatus(`Export started (${format === "csv" ? "CSV" : "JSON lines"}).`);
  } catch (error) {
    ctx.setStatus(`Cannot export: ${error.message}`, true);
  }
}
