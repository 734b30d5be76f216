// The Data page: sign in with the admin token, then poll the /admin JSON endpoints.
// Every device-supplied string reaches the page through textContent or setAttribute,
// never through HTML parsing: variable names and values are untrusted input.
"use strict";

(() => {
  const TOKEN_KEY = "devicedata.adminToken";
  const POLL_MS = 2000;

  const $ = (id) => document.getElementById(id);
  const view = {
    signin: $("signin"), form: $("signin-form"), tokenInput: $("admin-token"),
    signinError: $("signin-error"), signout: $("signout"), app: $("app"),
    status: $("status"), devices: $("devices"), devicesEmpty: $("devices-empty"),
    device: $("device"), deviceTitle: $("device-title"), deviceId: $("device-id"),
    variables: $("variables"), variablesEmpty: $("variables-empty"),
    spark: $("spark"), sparkCaption: $("spark-caption"), sparkline: $("sparkline"),
    sparkRange: $("spark-range"),
  };

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    deviceId: deviceFromHash(),
    sparkVariable: "",
    sparkChosen: false, // the user picked it; otherwise follow the first numeric variable
    timer: 0,
    generation: 0, // bumped on every sign-in/selection so late answers are dropped
  };

  class Refused extends Error {}

  async function call(path) {
    const response = await fetch(path, {
      headers: { "admin-token": state.token, accept: "application/json" },
      cache: "no-store",
    });
    if (response.status === 401) throw new Refused("The admin token was refused.");
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      // An empty or non-JSON body is reported below like any other failure.
    }
    if (!response.ok || !body || body.status !== true) {
      const error = new Error((body && body.message) || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return body.result;
  }

  // Small DOM helpers: elements built from text only.

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function cell(label, child, className) {
    const td = document.createElement("td");
    td.setAttribute("data-label", label);
    if (className) td.className = className;
    if (child instanceof Node) td.append(child);
    else td.textContent = child;
    return td;
  }

  // Rows are rebuilt on every refresh, which would drop keyboard focus: put it back on
  // the button for the same device or variable.
  function replaceRows(table, rows, key) {
    const active = document.activeElement;
    const focused = active && table.contains(active) ? active.dataset[key] : undefined;
    table.tBodies[0].replaceChildren(...rows);
    if (focused === undefined) return;
    for (const button of table.tBodies[0].querySelectorAll("button")) {
      if (button.dataset[key] === focused) button.focus();
    }
  }

  function timeElement(iso) {
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

  function describeTime(iso) {
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

  function isNumber(value) {
    return typeof value === "number" && Number.isFinite(value);
  }

  function formatValue(point) {
    if (point.value === undefined || point.value === null) {
      const loc = point.location && point.location.coordinates;
      return loc ? `${loc[1]}, ${loc[0]}` : "—";
    }
    if (typeof point.value === "object") return JSON.stringify(point.value);
    return String(point.value);
  }

  // Devices

  function renderDevices(devices) {
    view.devicesEmpty.hidden = devices.length > 0;
    view.devices.hidden = devices.length === 0;
    const rows = devices.map((device) => {
      const tr = document.createElement("tr");
      const pick = el("button", device.name, "link");
      pick.type = "button";
      pick.setAttribute("aria-label", `Show the data of ${device.name}`);
      if (device.id === state.deviceId) {
        tr.className = "selected";
        pick.setAttribute("aria-current", "true");
      }
      pick.dataset.device = device.id;
      pick.addEventListener("click", () => selectDevice(device.id));
      const points = device.points_last_hour;
      tr.append(
        cell("Name", pick, "name"),
        cell("ID", el("code", device.id)),
        cell("Last input", timeElement(device.last_input)),
        cell("Points (1 h)", points === null || points === undefined ? "—" : String(points),
          "number"),
      );
      return tr;
    });
    replaceRows(view.devices, rows, "device");

    const chosen = devices.find((d) => d.id === state.deviceId);
    view.device.hidden = !chosen;
    if (chosen) {
      view.deviceTitle.textContent = chosen.name;
      view.deviceId.textContent = chosen.id;
    }
  }

  function selectDevice(id) {
    if (id === state.deviceId) return;
    state.deviceId = id;
    state.sparkVariable = "";
    state.sparkChosen = false;
    history.replaceState(null, "", id ? `#device=${encodeURIComponent(id)}` : "#");
    view.variables.tBodies[0].replaceChildren();
    view.spark.hidden = true;
    if (id) window.scrollTo(0, 0); // the chosen device's data sits above the device list
    refreshSoon();
  }

  function deviceFromHash() {
    const match = /^#device=(.+)$/.exec(location.hash);
    if (!match) return "";
    try {
      return decodeURIComponent(match[1]);
    } catch (_) {
      return "";
    }
  }

  // Variables (the Data tab)

  function renderVariables(points) {
    view.variablesEmpty.hidden = points.length > 0;
    view.variables.hidden = points.length === 0;
    const numeric = points.filter((p) => isNumber(p.value)).map((p) => p.variable);
    if (!state.sparkChosen || !numeric.includes(state.sparkVariable)) {
      state.sparkVariable = numeric.length ? numeric[0] : "";
      state.sparkChosen = false;
    }
    const rows = points.map((point) => {
      const tr = document.createElement("tr");
      let name;
      if (isNumber(point.value)) {
        name = el("button", point.variable, "link");
        name.type = "button";
        name.setAttribute("aria-label", `Chart the last hour of ${point.variable}`);
        name.setAttribute("aria-pressed", String(point.variable === state.sparkVariable));
        name.dataset.variable = point.variable;
        name.addEventListener("click", () => {
          state.sparkVariable = point.variable;
          state.sparkChosen = true;
          refreshSoon();
        });
      } else {
        name = el("span", point.variable);
      }
      if (point.variable === state.sparkVariable) tr.className = "selected";
      tr.append(
        cell("Variable", name, "name"),
        cell("Value", formatValue(point), isNumber(point.value) ? "value number" : "value"),
        cell("Unit", point.unit === undefined || point.unit === null ? "" : point.unit, "unit"),
        cell("Time", timeElement(point.time), "time"),
      );
      return tr;
    });
    replaceRows(view.variables, rows, "variable");
  }

  // Sparkline of one variable's last hour (drawn by spark.js).

  function renderSpark(series, unit) {
    const points = series.points.filter((p) => isNumber(p.value));
    view.spark.hidden = false;
    const kind = series.interval ? `1-minute means, ${points.length}` : `${points.length}`;
    view.sparkCaption.textContent =
      `${series.variable}: last hour (${kind} point${points.length === 1 ? "" : "s"})`;
    window.devicedataSpark.draw(view.sparkline, points, Date.parse(series.start), 3600 * 1000);
    if (!points.length) {
      view.sparkRange.textContent = "No numeric values in the last hour.";
      return;
    }
    const values = points.map((p) => p.value);
    const suffix = unit ? ` ${unit}` : "";
    view.sparkRange.textContent = `min ${Math.min(...values)}${suffix} · max ` +
      `${Math.max(...values)}${suffix} · latest ${values[values.length - 1]}${suffix}`;
  }

  // Polling

  async function refresh() {
    const generation = state.generation;
    const devices = await call("/admin/devices");
    if (generation !== state.generation) return;
    if (state.deviceId && !devices.some((d) => d.id === state.deviceId)) selectDevice("");
    renderDevices(devices);
    if (!state.deviceId) return;
    const base = `/admin/devices/${encodeURIComponent(state.deviceId)}`;
    const points = await call(`${base}/variables`);
    if (generation !== state.generation) return;
    renderVariables(points);
    if (!state.sparkVariable) {
      view.spark.hidden = true;
      return;
    }
    const chosen = points.find((p) => p.variable === state.sparkVariable);
    const series = await call(`${base}/series?variable=${encodeURIComponent(state.sparkVariable)}`);
    if (generation !== state.generation) return;
    renderSpark(series, chosen && chosen.unit);
  }

  async function tick() {
    state.timer = 0;
    if (!state.token) return;
    try {
      await refresh();
      view.status.textContent = "";
      view.status.className = "status";
    } catch (error) {
      if (error instanceof Refused) {
        signOut(error.message);
        return;
      }
      view.status.textContent = `Cannot refresh: ${error.message}. Retrying…`;
      view.status.className = "status error";
    }
    schedule();
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = document.hidden || !state.token ? 0 : setTimeout(tick, POLL_MS);
  }

  function refreshSoon() {
    state.generation += 1;
    clearTimeout(state.timer);
    state.timer = setTimeout(tick, 0);
  }

  // Signing in and out

  function showSignedIn(signedIn) {
    view.signin.hidden = signedIn;
    view.app.hidden = !signedIn;
    view.signout.hidden = !signedIn;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = "";
    state.generation += 1;
    clearTimeout(state.timer);
    view.signinError.textContent = message || "";
    showSignedIn(false);
    view.tokenInput.focus();
  }

  view.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = view.tokenInput.value.trim();
    if (!token) return;
    state.token = token;
    view.signinError.textContent = "";
    try {
      await call("/admin/devices");
    } catch (error) {
      state.token = "";
      view.signinError.textContent = error instanceof Refused
        ? "That admin token was refused." : `Cannot sign in: ${error.message}`;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    view.tokenInput.value = "";
    showSignedIn(true);
    refreshSoon();
  });

  view.signout.addEventListener("click", () => signOut(""));
  window.addEventListener("hashchange", () => selectDevice(deviceFromHash()));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.token) refreshSoon();
  });

  if (state.token) {
    showSignedIn(true);
    refreshSoon();
  } else {
    showSignedIn(false);
  }
})();
