// "New device", "New token", "New network": a button opens a dialog whose form creates
// something; the API's refusal is shown in the dialog, else the new token, once.
"use strict";

import { $, setUpDialog, showSecret } from "./dom.js";

// `kind` names the elements: the button new-KIND, the dialog KIND-dialog holding the form
// KIND-form (its error in KIND-error) and the panel KIND-created (with a [data-secret]
// element). create() calls the API and returns the created thing (whose .token is shown),
// or null to do nothing; shown(created) fills in the rest of the panel.
export function setUpCreation(kind, { create, shown, label = "Token", onClose }) {
  const opener = $(`new-${kind}`);
  const dialog = $(`${kind}-dialog`);
  const form = $(`${kind}-form`);
  const error = $(`${kind}-error`);
  const done = $(`${kind}-created`);
  let busy = false;

  opener.addEventListener("click", () => {
    form.reset();
    form.hidden = false;
    done.hidden = true;
    error.textContent = "";
    dialog.showModal();
    form.querySelector("input, select").focus();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return; // a second Enter while the first request is on its way
    busy = true;
    error.textContent = "";
    let created;
    try {
      created = await create();
    } catch (failure) {
      error.textContent = `Cannot create: ${failure.message}`;
      return;
    } finally {
      busy = false;
    }
    if (!created) return;
    form.hidden = true;
    done.hidden = false;
    const secret = done.querySelector("[data-secret]");
    showSecret(secret, label, created.token);
    if (shown) shown(created);
    secret.querySelector("button").focus();
  });

  setUpDialog(dialog, () => {
    opener.focus();
    if (onClose) onClose();
  });
}
