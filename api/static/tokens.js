// A device's tokens: prefix, name, serial number, permission, expiry, status; "New token"
// (optionally with a serial number such as a LoRaWAN DevEUI; shown once) and "Revoke".
"use strict";

import { call, devicePath } from "./api.js";
import { setUpCreation } from "./creation.js";
import { $, button, cell, el, replaceRows, timeElement } from "./dom.js";

let ctx;

export function initTokens(context) {
  ctx = context;
  setUpCreation("token", { create: createToken, onClose: () => ctx.refreshSoon() });
}

export async function refreshTokens(deviceId) {
  const tokens = await call(devicePath(deviceId, "/tokens"));
  if (deviceId !== ctx.state.deviceId) return;
  const rows = tokens.map((token) => {
    const tr = document.createElement("tr");
    const prefix = el("code", `${token.prefix}…`);
    prefix.id = `token-${token.prefix}`;
    let action = "";
    if (token.status === "active") {
      action = button("Revoke", () => revoke(token), "secondary small");
      action.setAttribute("aria-describedby", prefix.id);
      action.dataset.key = token.prefix;
    }
    tr.append(
      cell("Prefix", prefix),
      cell("Name", token.name || "—"),
      cell("Serial number", token.serie_number ? el("code", token.serie_number) : "—"),
      cell("Permission", token.permission),
      cell("Expires", token.expires_at ? timeElement(token.expires_at) : "never"),
      cell("Status", el("span", token.status, `badge ${token.status}`)),
      cell("", action),
    );
    return tr;
  });
  replaceRows($("tokens"), rows);
}

async function revoke(token) {
  try {
    await call(`/admin/tokens/${encodeURIComponent(token.prefix)}`, { method: "DELETE" });
    ctx.setStatus(`Token ${token.prefix}… revoked: it is refused from now on.`);
  } catch (error) {
    ctx.setStatus(`Cannot revoke: ${error.message}`, true);
  }
  ctx.refreshSoon();
  $("new-token").focus();
}

// The registry checks the serial (a DevEUI in any spelling, one unrevoked token per
// serial, write or full only); its refusal is shown in the dialog as it words it.
function createToken() {
  const body = { name: $("token-name").value.trim(), permission: $("token-permission").value,
    expires: $("token-expires").value || null };
  const serial = $("token-serial").value.trim();
  if (serial) body.serie_number = serial;
  return call(devicePath(ctx.state.deviceId, "/tokens"), { method: "POST", body });
}
