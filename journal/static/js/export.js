/* Export page: start the export in the background, show its progress, then reload the page with the result.
   Without this script the form posts normally and the export runs inside the request. No dependencies;
   all text goes in through textContent. */
(function () {
  "use strict";

  const form = document.getElementById("export-form");
  const box = document.getElementById("export-progress");
  if (!form || !box || !window.fetch) return;

  const bar = box.querySelector("progress");
  const text = document.getElementById("export-progress-text");
  const button = form.querySelector("button[type=submit]");
  const mailTo = document.getElementById("mail-to-field");
  const POLL_MS = 700;
  const MAX_POLL_ERRORS = 10;

  function showProgress(state) {
    const total = state.total || 0;
    bar.max = Math.max(total, 1);
    bar.value = Math.min(state.done || 0, bar.max);
    text.textContent = total ? state.phase + ": " + state.done + " of " + total + " photos" : state.phase;
  }

  function fail(message) {
    box.hidden = false;
    box.classList.add("failed");
    text.textContent = message;
    button.disabled = false;
  }

  function poll(statusUrl, pageUrl, errors) {
    fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (state) {
        showProgress(state);
        if (state.state === "running") {
          window.setTimeout(function () { poll(statusUrl, pageUrl, 0); }, POLL_MS);
        } else {
          window.location.assign(pageUrl);
        }
      })
      .catch(function () {
        if (errors >= MAX_POLL_ERRORS) {
          fail("Lost contact with the journal; reload the page to see how the export ended.");
          return;
        }
        window.setTimeout(function () { poll(statusUrl, pageUrl, errors + 1); }, POLL_MS * 2);
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    box.hidden = false;
    box.classList.remove("failed");
    showProgress({ phase: "Starting", done: 0, total: 0 });
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok) throw new Error(data.error || "The export could not start (HTTP " + response.status + ").");
          poll(data.status_url, data.page_url, 0);
        });
      })
      .catch(function (error) { fail(error.message || "The journal could not be reached."); });
  });

  function syncMailField() {
    const eml = form.querySelector("input[name=format][value=eml]");
    if (mailTo && eml) mailTo.hidden = !eml.checked;
  }
  form.querySelectorAll("input[name=format]").forEach(function (input) {
    input.addEventListener("change", syncMailField);
  });
  syncMailField();

  // A job already running when the page was loaded (started in another tab, or before a reload).
  if (box.dataset.statusUrl) {
    button.disabled = true;
    poll(box.dataset.statusUrl, box.dataset.pageUrl, 0);
  }
})();
