// The console: sign in with the admin token, then poll the /admin JSON endpoints. Where
// we are (device, tab, variable) lives in the URL's #fragment, so reload and back work.
"use strict";

import { call, keepToken, Refused, session } from "./api.js";
import { initData, refreshData } from "./data.js";
import { initDevices, renderDevices, renderHeading } from "./devices.js";
import { $ } from "./dom.js";
import { initExport, refreshExport } from "./exporter.js";
import { initLive, startLive, stopLive } from "./live.js";
import { initManage, showDevice } from "./manage.js";
import { initNetworks, renderNetworks } from "./networks.js";
import { initTokens, refreshTokens } from "./tokens.js";

const POLL_MS = 2000;
const TABS = ["data", "tokens", "export", "live", "settings"];

const state = {
  ...fromHash(), devices: [], info: null, timer: 0, generation: 0, shownSettingsFor: "",
  scrollToDevice: false,
};

const ctx = { state, refreshSoon, selectDevice, showHistory, setStatus };

function fromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const tab = params.get("tab");
  return { deviceId: params.get("device") || "", tab: TABS.includes(tab) ? tab : "data",
    variable: params.get("variable") || "" };
}

function writeHash() {
  const params = new URLSearchParams();
  if (state.deviceId) {
    params.set("device", state.deviceId);
    params.set("tab", state.tab);
    if (state.tab === "data" && state.variable) params.set("variable", state.variable);
  }
  const hash = `#${params}`;
  if (location.hash !== hash) {
    history.replaceState(null, "", hash === "#" ? location.pathname + location.search : hash);
  }
}

function selectDevice(id) {
  if (id === state.deviceId) return;
  state.deviceId = id;
  state.variable = "";
  state.scrollToDevice = Boolean(id);
  writeHash();
  refreshSoon();
}

function showHistory(variable) {
  state.variable = variable;
  writeHash();
  refreshSoon();
}

function selectTab(tab, focus) {
  state.tab = tab;
  writeHash();
  showTab(focus);
  const device = state.devices.find((d) => d.id === state.deviceId);
  if (tab === "settings" && device) showDevice(device); // fill the form before typing starts
  refreshSoon();
}

function showTab(focus) {
  for (const name of TABS) {
    const tab = $(`tab-${name}`);
    const chosen = name === state.tab;
    tab.setAttribute("aria-selected", String(chosen));
    tab.tabIndex = chosen ? 0 : -1;
    $(`panel-${name}`).hidden = !chosen;
    if (chosen && focus) tab.focus();
  }
}

function setStatus(message, isError) {
  $("status").textContent = message;
  $("status").className = isError ? "status error" : "status";
}

// Polling

async function refresh() {
  const generation = state.generation;
  if (!state.info) state.info = await call("/admin/info");
  const [devices, networks] = await Promise.all([call("/admin/devices"),
    call("/admin/networks")]);
  if (generation !== state.generation) return;
  renderDevices(devices);
  renderNetworks(networks);
  const device = devices.find((d) => d.id === state.deviceId);
  $("device").hidden = !device;
  if (!device) {
    if (state.deviceId) selectDevice("");
    stopLive();
    return;
  }
  renderHeading(device);
  showTab(false);
  if (state.scrollToDevice) {
    state.scrollToDevice = false; // on a narrow screen the device sits below the list
    if ($("device").getBoundingClientRect().top < 0 || window.innerWidth < 900) {
      $("device").scrollIntoView({ block: "start" });
    }
  }
  if (state.tab === "live") startLive(device.id);
  else stopLive();
  if (state.tab === "data") await refreshData(device.id, state.variable);
  else if (state.tab === "tokens") await refreshTokens(device.id);
  else if (state.tab === "export") await refreshExport(device.id);
  else if (state.tab === "settings") showDevice(device);
}

async function tick() {
  state.timer = 0;
  if (!session.token) return;
  try {
    await refresh();
    if ($("status").classList.contains("error")) setStatus("");
  } catch (error) {
    if (error instanceof Refused) {
      signOut(error.message);
      return;
    }
    setStatus(`Cannot refresh: ${error.message}. Retrying…`, true);
  }
  schedule();
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = document.hidden || !session.token ? 0 : setTimeout(tick, POLL_MS);
}

function refreshSoon() {
  state.generation += 1;
  clearTimeout(state.timer);
  state.timer = setTimeout(tick, 0);
}

// Signing in and out

function showSignedIn(signedIn) {
  $("signin").hidden = signedIn;
  $("app").hidden = !signedIn;
  $("signout").hidden = !signedIn;
}

function signOut(message) {
  stopLive();
  keepToken("");
  state.generation += 1;
  state.info = null;
  clearTimeout(state.timer);
  $("signin-error").textContent = message || "";
  showSignedIn(false);
  $("admin-token").focus();
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("admin-token").value.trim();
  if (!token) return;
  session.token = token;
  $("signin-error").textContent = "";
  try {
    await call("/admin/devices");
  } catch (error) {
    session.token = "";
    $("signin-error").textContent = error instanceof Refused
      ? "That admin token was refused." : `Cannot sign in: ${error.message}`;
    return;
  }
  keepToken(token);
  $("admin-token").value = "";
  showSignedIn(true);
  refreshSoon();
});

$("signout").addEventListener("click", () => signOut(""));

// Tabs: arrow keys move between them (the WAI-ARIA tabs pattern).
for (const name of TABS) {
  const tab = $(`tab-${name}`);
  tab.addEventListener("click", () => selectTab(name, false));
  tab.addEventListener("keydown", (event) => {
    const at = TABS.indexOf(name);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: TABS.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    selectTab(TABS[(to + TABS.length) % TABS.length], true);
  });
}

window.addEventListener("hashchange", () => {
  Object.assign(state, fromHash());
  refreshSoon();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && session.token) refreshSoon();
});

initDevices(ctx);
initData(ctx);
initTokens(ctx);
initExport(ctx);
initLive(ctx);
initManage(ctx);
initNetworks(ctx);
showTab(false);
if (session.token) {
  showSignedIn(true);
  refreshSoon();
} else {
  showSignedIn(false);
}
