// The live monitor: events from ws/botdialogs/monitor/, newest on top.
// Everything a user wrote is set with textContent, never as markup.
(function () {
  "use strict";

  function start() {
    var config = JSON.parse(document.getElementById("monitor-config").textContent);
    var root = document.getElementById("monitor");
    var list = document.getElementById("monitor-events");
    var empty = document.getElementById("monitor-empty");
    var status = document.getElementById("monitor-status");
    var form = document.getElementById("monitor-filters");
    var botInput = document.getElementById("monitor-bot");
    var userInput = document.getElementById("monitor-user");
    var pauseButton = document.getElementById("monitor-pause");
    var paused = false;
    var held = [];
    var socket = null;
    var retryDelay = 1000;

    function setStatus(text, state) {
      status.textContent = text;
      status.className = "monitor-status" + (state ? " " + state : "");
    }

    function filters() {
      return { bot: botInput.value, user: userInput.value.trim() };
    }

    function span(className, text) {
      var node = document.createElement("span");
      node.className = className;
      node.textContent = text;
      return node;
    }

    // Quoted, with control characters (aiogram_dialog's callback separators) made visible.
    function quoted(text) {
      return "\u201c" + String(text || "").replace(/[\u0000-\u001f\u007f]/g, "\u00b7") + "\u201d";
    }

    function detail(event) {
      var arrow = event.previous ? event.previous + " \u2192 " : "";
      switch (event.kind) {
        case "update":
          if (event.update === "callback") return "callback " + quoted(event.data);
          if (event.update === "message") return "message " + quoted(event.text);
          return event.update || "";
        case "dialog.started":
        case "dialog.closed":
          return event.state || "";
        case "dialog.switched":
        case "state.changed":
          return arrow + (event.state || "(none)");
        case "data.changed":
          return (event.state ? event.state + ": " : "") + "keys " + (event.keys || []).join(", ");
        case "action":
        case "timer":
          return [event.action, event.state, event.kind === "timer" ? "timer " + event.timer_id : "",
            "id " + event.action_id].filter(Boolean).join(" \u00b7 ");
        case "error":
          return event.error || "";
        default:
          return "";
      }
    }

    function render(event) {
      var item = document.createElement("li");
      item.className = "kind-" + String(event.kind).replace(/[^a-z]/g, "-");
      item.dataset.kind = event.kind;
      item.dataset.user = event.user_id == null ? "" : String(event.user_id);
      var when = new Date((event.at || 0) * 1000);
      item.appendChild(span("time", when.toLocaleTimeString()));
      item.appendChild(span("kind", config.kinds[event.kind] || String(event.kind)));
      var text = span("detail", detail(event));
      if (event.kind !== "update" && event.kind !== "error") text.classList.add("state");
      item.appendChild(text);
      var who = event.user_id == null ? "chat " + event.chat_id : "user " + event.user_id;
      who += " \u00b7 " + (event.bot || event.bot_id || "?");
      if (event.language) who += " \u00b7 " + event.language + " (" + event.language_source + ")";
      if (event.stack_url) {
        var link = document.createElement("a");
        link.className = "who stack-link";
        link.href = event.stack_url;
        link.textContent = who;
        link.title = "Dialog stacks of this user in the admin";
        item.appendChild(link);
      } else {
        item.appendChild(span("who", who));
      }
      list.insertBefore(item, list.firstChild);
      while (list.children.length > config.max_events) list.removeChild(list.lastChild);
      empty.hidden = true;
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var current = filters();
      var query = new URLSearchParams();
      if (current.bot) query.set("bot", current.bot);
      if (current.user) query.set("user", current.user);
      socket = new WebSocket(scheme + window.location.host + config.socket_path +
        (query.toString() ? "?" + query.toString() : ""));
      socket.addEventListener("open", function () {
        retryDelay = 1000;
        socket.send(JSON.stringify(filters()));
      });
      socket.addEventListener("message", function (message) {
        var data;
        try { data = JSON.parse(message.data); } catch (error) { return; }
        if (data.type === "filters") {
          setStatus(paused ? "paused" : "live", paused ? "" : "live");
        } else if (data.type === "event") {
          if (paused) {
            held.push(data.event);
            if (held.length > config.max_events) held.shift();
            setStatus("paused (" + held.length + " new)", "");
          } else {
            render(data.event);
          }
        }
      });
      socket.addEventListener("close", function (closing) {
        if (closing.code === 4403) {
          setStatus("not allowed: sign in to the admin as staff", "closed");
          return;
        }
        setStatus("disconnected; reconnecting…", "closed");
        window.setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      });
    }

    form.addEventListener("submit", function (submitting) {
      submitting.preventDefault();
      var params = new URLSearchParams();
      var current = filters();
      if (current.bot) params.set("bot", current.bot);
      if (current.user) params.set("user", current.user);
      var query = params.toString();
      window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
      list.textContent = "";
      empty.hidden = false;
      held = [];
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(current));
    });

    pauseButton.addEventListener("click", function () {
      paused = !paused;
      root.classList.toggle("paused", paused);
      pauseButton.textContent = paused ? "Resume" : "Pause";
      pauseButton.setAttribute("aria-pressed", String(paused));
      if (!paused) {
        held.forEach(render);
        held = [];
      }
      setStatus(paused ? "paused" : "live", paused ? "" : "live");
    });

    document.getElementById("monitor-clear").addEventListener("click", function () {
      list.textContent = "";
      held = [];
      empty.hidden = false;
    });

    connect();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
