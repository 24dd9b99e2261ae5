// The chat page's "Telegram faults" control: make this bot's Bot API calls fail for a few
// calls (5xx, timeouts, 429), through the user API's faults endpoint. Kept apart from
// chat.js: it only reads the page's config and its own form.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const form = document.getElementById("fault-form");
  const kind = document.getElementById("fault-kind");
  const calls = document.getElementById("fault-calls");
  const state = document.getElementById("fault-state");

  function show(fault) {
    if (!fault) {
      state.textContent = "no fault";
    } else {
      const left = fault.calls_left === null ? "" : `, ${fault.calls_left} call(s) left`;
      state.textContent = `${fault.kind}: ${fault.calls_failed} failed${left}`;
    }
  }

  async function send(body) {
    const response = await fetch(config.faultsUrl, {
      method: body ? "POST" : "GET",
      headers: {"Content-Type": "application/json"},
      body: body ? JSON.stringify(body) : undefined,
    });
    const answer = await response.json();
    if (!answer.ok) {
      state.textContent = answer.description;
      return;
    }
    show(answer.result);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const count = parseInt(calls.value, 10);
    send({kind: kind.value || null, calls: count > 0 ? count : null});
  });
  document.getElementById("faults").addEventListener("toggle", () => send(null));
})();
