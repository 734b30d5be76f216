// The Live tab: long-polls /live for one device while the tab is open, and shows each
// accepted message or request and each rejection with its reason, newest first. The
// list is a role="log" region named "Live"; it keeps the newest MAX_SHOWN entries.
"use strict";

import { call, devicePath, Refused } from "./api.js";
import { $, el } from "./dom.js";

const MAX_SHOWN = 200;
const WAIT_S = 10;
let ctx;
let run = null; // {deviceId, controller}

export function initLive(context) {
  ctx = context;
  $("live-clear").addEventListener("click", () => $("live").replaceChildren());
  window.addEventListener("pagehide", () => stopLive());
}

export function startLive(deviceId) {
  if (run && run.deviceId === deviceId) return;
  stopLive();
  $("live").replaceChildren();
  run = { deviceId, controller: new AbortController() };
  loop(run);
}

export function stopLive() {
  if (!run) return;
  run.controller.abort();
  const { deviceId } = run;
  run = null;
  // Tell the API to drop the watch now (otherwise it lapses a minute after the last poll).
  call(devicePath(deviceId, "/live"), { method: "DELETE" }).catch(() => {});
}

async function loop(current) {
  let after = 0;
  let feed = null;
  let wait = 0; // the first answer at once, short ones until the watch is confirmed
  while (run === current) {
    try {
      const result = await call(devicePath(current.deviceId, "/live"), {
        query: { after, wait }, signal: current.controller.signal });
      if (run !== current) return;
      if (feed !== null && result.feed !== feed) {
        feed = result.feed; // the API restarted: its numbering starts again
        after = 0;
        continue;
      }
      feed = result.feed;
      after = result.last;
      wait = result.watching ? WAIT_S : 0.5;
      status(result);
      for (const event of result.events) show(event);
    } catch (error) {
      if (run !== current) return;
      if (error instanceof Refused) {
        ctx.refreshSoon();
        return;
      }
      $("live-status").textContent = `Live view interrupted: ${error.message}. Retrying…`;
      await new Promise((resolve) => { setTimeout(resolve, 2000); });
    }
  }
}

function status(result) {
  let text = "Watching: what reaches this device appears here as it arrives.";
  if (!result.online) text = "The broker is unreachable: live events cannot arrive.";
  else if (!result.watching) text = "Starting to watch…";
  if ($("live-status").textContent !== text) $("live-status").textContent = text;
}

function show(event) {
  const item = el("li", undefined, `event ${event.outcome}`);
  const head = el("p", undefined, "event-head");
  const when = el("time", new Date(event.time).toLocaleTimeString());
  when.dateTime = event.time;
  head.append(when, " ",
    el("span", event.source === "mqtt" ? "MQTT" : "HTTP", "badge"), " ",
    el("span", event.outcome, `badge ${event.outcome}`), " ",
    el("span", `${event.points} point${event.points === 1 ? "" : "s"}`), " ",
    el("code", event.where, "muted small"));
  item.append(head);
  if (event.outcome === "rejected") {
    item.append(el("p", `${event.reason}: ${event.message}`, "reason"));
    if (event.errors && event.errors.length) {
      const list = el("ul", undefined, "field-errors");
      for (const e of event.errors) {
        const at = e.index === undefined || e.index === null ? "" : `[${e.index}] `;
        list.append(el("li", `${at}${e.field}: ${e.message}`));
      }
      item.append(list);
    }
  }
  if (event.payload !== undefined) {
    const cut = event.truncated ? ` (first part of ${event.payload_bytes} bytes)` : "";
    const kind = event.encoding === "hex" ? "Payload, hex" : "Payload";
    item.append(el("p", `${kind}${cut}`, "muted small"), el("pre", event.payload, "payload"));
  }
  const extra = [event.process];
  if (event.dropped) extra.push(`${event.dropped} earlier events left out (rate limit)`);
  item.append(el("p", extra.join(" · "), "muted small"));
  const log = $("live");
  log.prepend(item);
  while (log.children.length > MAX_SHOWN) log.lastElementChild.remove();
}
