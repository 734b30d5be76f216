// Small DOM helpers. Every device-supplied string reaches the page through textContent
// or setAttribute, never through HTML parsing: names, variables and values are untrusted.
"use strict";

export const $ = (id) => document.getElementById(id);

export function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

export function button(text, onClick, className, label) {
  const node = el("button", text, className);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

export function cell(label, child, className) {
  const td = document.createElement("td");
  td.setAttribute("data-label", label);
  if (className) td.className = className;
  if (child instanceof Node) td.append(child);
  else td.textContent = child === undefined || child === null ? "" : String(child);
  return td;
}

// Rows are rebuilt on every refresh, which would drop keyboard focus: put it back on
// the element with the same data-key.
export function replaceRows(table, rows) {
  const active = document.activeElement;
  const key = active && table.contains(active) ? active.dataset.key : undefined;
  table.tBodies[0].replaceChildren(...rows);
  if (key === undefined) return;
  for (const node of table.tBodies[0].querySelectorAll("[data-key]")) {
    if (node.dataset.key === key) {
      node.focus();
      return;
    }
  }
}

export function timeElement(iso) {
  const node = document.createElement("time");
  if (!iso) {
    node.textContent = "never";
    return node;
  }
  node.dateTime = iso;
  node.title = iso;
  node.textContent = describeTime(iso);
  return node;
}

export function describeTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return iso;
  const now = new Date();
  const sameDay = when.toDateString() === now.toDateString();
  const clock = sameDay ? when.toLocaleTimeString() : when.toLocaleString();
  const seconds = Math.round((now - when) / 1000);
  if (seconds < 0 || seconds >= 3600) return clock;
  const ago = seconds < 60 ? `${seconds} s ago` : `${Math.floor(seconds / 60)} min ago`;
  return `${clock} · ${ago}`;
}

export function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

export function formatValue(point) {
  if (point.value === undefined || point.value === null) {
    const loc = point.location && point.location.coordinates;
    return loc ? `${loc[1]}, ${loc[0]}` : "—";
  }
  if (typeof point.value === "object") return JSON.stringify(point.value);
  return String(point.value);
}

// A datetime-local input's value (local time, no zone) as ISO 8601 UTC; "" stays "".
export function inputToIso(value) {
  if (!value) return "";
  const when = new Date(value);
  return Number.isNaN(when.getTime()) ? "" : when.toISOString();
}

// Show a dialog's first panel again each time it opens; [data-close] buttons close it.
export function setUpDialog(dialog, onClose) {
  for (const node of dialog.querySelectorAll("[data-close]")) {
    node.addEventListener("click", () => dialog.close());
  }
  dialog.addEventListener("close", () => onClose && onClose());
}

// A secret shown once: the text, a copy button and a note that it will not come back.
export function showSecret(container, label, secret) {
  const id = `secret-${Math.random().toString(36).slice(2)}`;
  const title = el("p", `${label} (shown once: copy it now)`, "small strong");
  title.id = id;
  const code = el("code", secret, "secret-text");
  code.setAttribute("aria-labelledby", id);
  container.replaceChildren(title, code, copyButton(`Copy ${label.toLowerCase()}`, () => secret));
}

export function copyButton(text, read) {
  const node = button(text, async () => {
    try {
      await navigator.clipboard.writeText(read());
      node.textContent = "Copied";
    } catch (_) {
      node.textContent = "Select and copy it by hand";
    }
    setTimeout(() => { node.textContent = text; }, 2000);
  }, "secondary");
  return node;
}

// A titled, copyable block of text: a connection snippet, a webhook URL, a header.
export function snippet(title, text) {
  const figure = el("figure", undefined, "snippet");
  const caption = el("figcaption", title, "small strong");
  const pre = el("pre");
  pre.append(el("code", text));
  pre.tabIndex = 0;
  figure.append(caption, pre, copyButton(`Copy ${title}`, () => text));
  return figure;
}
