// The Settings tab: rename, and delete with a typed confirmation (the data goes too).
"use strict";

import { call, devicePath } from "./api.js";
import { $ } from "./dom.js";

let ctx;

export function initManage(context) {
  ctx = context;
  $("rename-form").addEventListener("submit", rename);
  $("delete-confirm").addEventListener("input", checkConfirmation);
  $("delete-form").addEventListener("submit", remove);
}

export function showDevice(device) {
  if (ctx.state.shownSettingsFor !== device.id) {
    ctx.state.shownSettingsFor = device.id;
    $("rename-name").value = device.name;
    $("delete-confirm").value = "";
  }
  checkConfirmation();
}

function current() {
  return ctx.state.devices.find((d) => d.id === ctx.state.deviceId);
}

function checkConfirmation() {
  const device = current();
  $("delete-device").disabled = !device || $("delete-confirm").value !== device.name;
}

async function rename(event) {
  event.preventDefault();
  const name = $("rename-name").value.trim();
  if (!name) return;
  try {
    await call(devicePath(ctx.state.deviceId), { method: "PATCH", body: { name } });
    ctx.setStatus(`Renamed to ${name}.`);
  } catch (error) {
    ctx.setStatus(`Cannot rename: ${error.message}`, true);
  }
  ctx.refreshSoon();
}

async function remove(event) {
  event.preventDefault();
  const device = current();
  if (!device || $("delete-confirm").value !== device.name) return;
  $("delete-device").disabled = true;
  try {
    await call(devicePath(device.id), { method: "DELETE" });
    ctx.setStatus(`Deleted ${device.name}, its tokens and its data.`);
    ctx.selectDevice("");
    $("new-device").focus();
  } catch (error) {
    ctx.setStatus(`Cannot delete: ${error.message}`, true);
    checkConfirmation();
  }
}
