// Network credentials of LoRaWAN network servers (ChirpStack, The Things Stack): the list,
// "New network" (its token shown once, with the webhook settings) and "Revoke".
"use strict";

import { call } from "./api.js";
import { setUpCreation } from "./creation.js";
import { $, button, cell, el, replaceRows, snippet, timeElement } from "./dom.js";

let ctx;

export function initNetworks(context) {
  ctx = context;
  setUpCreation("network", { create: createNetwork, shown: showWebhooks,
    label: "Network token", onClose: () => ctx.refreshSoon() });
}

export function renderNetworks(networks) {
  $("networks-empty").hidden = networks.length > 0;
  $("networks").hidden = networks.length === 0;
  const rows = networks.map((network) => {
    const tr = document.createElement("tr");
    const name = el("span", network.name);
    name.id = `network-${network.prefix}`;
    let action = "";
    if (network.status === "active") {
      action = button("Revoke", () => revoke(network), "secondary small");
      action.setAttribute("aria-describedby", name.id);
      action.dataset.key = network.prefix;
    }
    const created = el("span", "created ", "muted small block");
    created.append(timeElement(network.created_at));
    const named = el("span");
    named.append(name, created);
    tr.append(
      cell("Name", named),
      cell("Prefix", el("code", `${network.prefix}…`)),
      cell("Status", el("span", network.status, `badge ${network.status}`)),
      cell("", action),
    );
    return tr;
  });
  replaceRows($("networks"), rows);
}

async function revoke(network) {
  try {
    await call(`/admin/networks/${encodeURIComponent(network.prefix)}`, { method: "DELETE" });
    ctx.setStatus(`Network ${network.name} (${network.prefix}…) revoked: its webhooks are ` +
      "refused from now on.");
  } catch (error) {
    ctx.setStatus(`Cannot revoke: ${error.message}`, true);
  }
  ctx.refreshSoon();
  $("new-network").focus();
}

function createNetwork() {
  const name = $("network-name").value.trim();
  return name ? call("/admin/networks", { method: "POST", body: { name } }) : null;
}

function showWebhooks(created) {
  const base = location.origin;
  $("webhooks").replaceChildren(
    snippet("ChirpStack endpoint", `${base}/integrations/chirpstack`),
    snippet("TTN base URL", `${base}/integrations/ttn`),
    snippet("Header", `Authorization: ${created.token}`),
  );
}
