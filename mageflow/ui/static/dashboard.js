// The dashboard's only script: live updates and the control buttons.
// No build step and no library: EventSource, fetch and the DOM.
"use strict";

(function () {
  const body = document.body;
  const live = document.getElementById("live");
  const token = document.querySelector('meta[name="mageflow-token"]');

  // Live: the server says when something the page shows has ended; the page
  // then fetches its live part again (already escaped by the server).
  let fetching = false;
  let again = false;
  async function refresh() {
    if (!live || !body.dataset.live) return;
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      const response = await fetch(body.dataset.live, { credentials: "same-origin" });
      if (response.ok) {
        live.innerHTML = await response.text();
        document.dispatchEvent(new CustomEvent("mageflow:refreshed"));
      }
    } finally {
      fetching = false;
      if (again) { again = false; refresh(); }
    }
  }
  if (body.dataset.events && window.EventSource) {
    const source = new EventSource(body.dataset.events);
    source.addEventListener("change", refresh);
  }

  // Controls: POST with the token in a header, after a confirmation for
  // what cannot be undone.
  const controls = document.querySelector(".controls");
  if (controls) {
    const result = document.getElementById("control-result");
    controls.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const question = button.dataset.confirm;
      if (question && !window.confirm(question)) return;
      const action = button.dataset.action;
      const headers = {};
      if (token) headers["X-Mageflow-Token"] = token.content;
      const response = await fetch(controls.dataset.url + action, {
        method: "POST", headers: headers, credentials: "same-origin",
      });
      const answer = await response.json().catch(() => ({ message: response.statusText }));
      result.textContent = answer.message;
      result.className = response.ok ? "ok" : "refused";
      if (response.ok && answer.gone) {
        window.location.assign(answer.gone);
      } else {
        refresh();
      }
    });
  }
})();
