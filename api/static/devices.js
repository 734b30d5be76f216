// The device list (filter, activity mark), the chosen device's heading, and "New device"
// with its token shown once and ready-to-paste connection snippets.
"use strict";

import { call } from "./api.js";
import { setUpCreation } from "./creation.js";
import { $, button, cell, el, replaceRows, snippet, timeElement } from "./dom.js";

let ctx;

export function initDevices(context) {
  ctx = context;
  $("device-filter").addEventListener("input", () => renderDevices(ctx.state.devices));
  setUpCreation("device", { create: createDevice, shown: showSnippets,
    onClose: () => ctx.refreshSoon() });
}

function activity(device) {
  const mark = el("span", "", device.active ? "dot active" : "dot");
  mark.setAttribute("aria-hidden", "true");
  return mark;
}

export function renderDevices(devices) {
  ctx.state.devices = devices;
  const filter = $("device-filter").value.trim().toLowerCase();
  const shown = filter ? devices.filter((d) => d.name.toLowerCase().includes(filter)) : devices;
  const empty = $("devices-empty");
  empty.hidden = shown.length > 0;
  empty.textContent = devices.length ? "No device name matches the filter." : "No devices yet.";
  $("devices").hidden = shown.length === 0;
  const rows = shown.map((device) => {
    const tr = document.createElement("tr");
    const pick = button(device.name, () => ctx.selectDevice(device.id), "link",
      `Open ${device.name}`);
    pick.dataset.key = device.id;
    if (device.id === ctx.state.deviceId) {
      tr.className = "selected";
      pick.setAttribute("aria-current", "true");
    }
    const name = el("span", "", "name");
    name.append(activity(device), pick,
      el("span", device.active ? " (active)" : " (idle)", "visually-hidden"));
    const points = device.points_last_hour;
    tr.append(
      cell("Name", name),
      cell("ID", el("code", device.id)),
      cell("Last input", timeElement(device.last_input)),
      cell("Points (1 h)", points === null || points === undefined ? "—" : String(points),
        "number"),
    );
    return tr;
  });
  replaceRows($("devices"), rows);
}

export function renderHeading(device) {
  $("device-title").textContent = device.name;
  $("device-id").textContent = device.id;
  const badge = $("device-activity");
  badge.textContent = device.active ? "active" : "idle";
  badge.className = device.active ? "badge active" : "badge";
  const seconds = ctx.state.info ? ctx.state.info.active_seconds : 300;
  badge.title = `Active: input within the last ${Math.round(seconds)} s`;
}

async function createDevice() {
  const name = $("device-name").value.trim();
  return name ? call("/admin/devices", { method: "POST", body: { name } }) : null;
}

function showSnippets(created) {
  $("snippets").replaceChildren(...snippets(created).map(([title, text]) => snippet(title, text)));
  ctx.selectDevice(created.id);
}

function snippets(created) {
  const info = ctx.state.info || {};
  const host = location.hostname;
  const body = '{"variable":"temperature","value":21.5,"unit":"C"}';
  const list = [
    ["HTTP (curl)", `curl -X POST '${location.origin}/data' -H 'token: ${created.token}' ` +
      `-H 'content-type: application/json' -d '${body}'`],
  ];
  if (info.mqtt_port) {
    list.push(["MQTT (mosquitto_pub)", `mosquitto_pub -h ${host} -p ${info.mqtt_port} -q 1 ` +
      `-u ${created.id} -P ${created.token} -t ${created.topic} -m '${body}'`]);
  }
  if (info.mqtt_tls_port) {
    // No CA file: the broker's certificate is one the device's own trust store knows.
    const trust = info.ca_file ? `--cafile ${info.ca_file}` : "--capath /etc/ssl/certs";
    list.push(["MQTT over TLS", `mosquitto_pub -h ${host} -p ${info.mqtt_tls_port} ` +
      `${trust} -q 1 -u ${created.id} -P ${created.token} ` +
      `-t ${created.topic} -m '${body}'`]);
  }
  return list;
}
