// Calls to the /admin JSON endpoints with the admin token, which lives in
// sessionStorage (gone when the tab closes).
"use strict";

const TOKEN_KEY = "devicedata.adminToken";

export const session = { token: sessionStorage.getItem(TOKEN_KEY) || "" };

export class Refused extends Error {}

export function keepToken(token) {
  session.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// The result of {"status": true, "result": ...}; throws Refused on 401, else an Error
// with the server's message (and .status).
export async function call(path, { method = "GET", body, query, signal } = {}) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const headers = { "admin-token": session.token, accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, {
    method, headers, signal, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) throw new Refused("The admin token was refused.");
  let answer = null;
  try {
    answer = await response.json();
  } catch (_) {
    // An empty or non-JSON body is reported below like any other failure.
  }
  if (!response.ok || !answer || answer.status !== true) {
    const error = new Error((answer && answer.message) || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return answer.result;
}

export const devicePath = (id, rest = "") => `/admin/devices/${encodeURIComponent(id)}${rest}`;
