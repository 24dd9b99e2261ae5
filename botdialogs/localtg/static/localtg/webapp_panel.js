// Local Telegram's Mini App panel: a web_app button opens its page here, in an iframe, with
// initData signed by the local bot's token (asked from the server) in the URL's fragment,
// where Telegram's clients put it. The page's Telegram.WebApp shim (telegram-web-app.js)
// talks to this panel with postMessage: MainButton, close, sendData.
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const SAFE_PAGE = /^https?:$/i;
  let panel = null;
  let frame = null;
  let mainButton = null;
  let note = null;
  let pageOrigin = "";

  function build() {
    panel = document.createElement("section");
    panel.className = "lt-webapp";
    panel.id = "webapp-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", "Mini App");
    panel.hidden = true;
    const header = document.createElement("header");
    header.className = "lt-webapp-header";
    const title = document.createElement("strong");
    title.className = "lt-webapp-title";
    const close = document.createElement("button");
    close.type = "button";
    close.className = "lt-webapp-close";
    close.setAttribute("aria-label", "Close the Mini App");
    close.textContent = "✕";
    close.addEventListener("click", hide);
    header.append(title, close);
    frame = document.createElement("iframe");
    frame.className = "lt-webapp-frame";
    frame.title = "Mini App";
    note = document.createElement("div");
    note.className = "lt-webapp-note";
    note.hidden = true;
    mainButton = document.createElement("button");
    mainButton.type = "button";
    mainButton.className = "lt-webapp-main";
    mainButton.hidden = true;
    mainButton.addEventListener("click", () => tell({ type: "main_button_pressed" }));
    panel.append(header, frame, note, mainButton);
    document.body.append(panel);
  }

  function tell(message) {
    if (frame && frame.contentWindow && pageOrigin) {
      frame.contentWindow.postMessage({ localtg: "webapp", ...message }, pageOrigin);
    }
  }

  function hide() {
    if (!panel) return;
    panel.hidden = true;
    frame.src = "about:blank";
    mainButton.hidden = true;
    pageOrigin = "";
  }

  function showNote(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  async function open(url, title) {
    if (!panel) build();
    let page;
    try {
      page = new URL(url, location.href);
    } catch (error) {
      page = null;
    }
    panel.querySelector(".lt-webapp-title").textContent = title || "Mini App";
    panel.hidden = false;
    showNote("");
    if (!page || !SAFE_PAGE.test(page.protocol)) {
      showNote("This button's web_app URL is not an http(s) page.");
      return;
    }
    let answer = {};
    try {
      const response = await fetch(config.webAppUrl, { method: "POST", body: "{}" });
      answer = await response.json();
    } catch (error) {
      answer = { description: "The server cannot be reached." };
    }
    if (!answer.ok) {
      showNote(answer.description || "Local Telegram could not open the Mini App.");
      return;
    }
    const launch = new URLSearchParams({
      tgWebAppData: answer.result.init_data,
      tgWebAppVersion: "7.0",
      tgWebAppPlatform: "localtg",
    });
    pageOrigin = page.origin;
    page.hash = launch.toString();
    frame.src = page.toString();
  }

  window.addEventListener("message", (event) => {
    if (!frame || event.source !== frame.contentWindow || event.origin !== pageOrigin) return;
    const message = event.data || {};
    if (message.localtg !== "webapp") return;
    if (message.type === "main_button") {
      mainButton.textContent = String(message.text || "");
      mainButton.hidden = !message.visible;
      mainButton.disabled = !message.active;
    } else if (message.type === "close") {
      hide();
    } else if (message.type === "send_data") {
      // Telegram delivers sendData only from keyboard buttons, as a web_app_data message.
      showNote("sendData(" + String(message.data).slice(0, 80) + ") - local Telegram only " +
        "shows it: the bot gets web_app_data from reply-keyboard Mini Apps alone.");
    }
  });

  window.localtgWebAppPanel = { open: open, close: hide };
})();
