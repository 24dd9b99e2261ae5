// A minimal Telegram.WebApp for pages opened by local Telegram's Mini App panel
// (webapp_panel.js): initData from the URL fragment, as Telegram's clients pass it, and
// ready, expand, close, sendData and MainButton talking to the panel. A page served to
// real Telegram loads https://telegram.org/js/telegram-web-app.js instead.
"use strict";
(function () {
  const launch = new URLSearchParams(location.hash.slice(1));
  const initData = launch.get("tgWebAppData") || "";
  const fields = new URLSearchParams(initData);
  const initDataUnsafe = {};
  for (const [key, value] of fields) {
    try {
      initDataUnsafe[key] = ["user", "receiver", "chat"].includes(key) ? JSON.parse(value) : value;
    } catch (error) {
      initDataUnsafe[key] = value;
    }
  }
  if (initDataUnsafe.auth_date) initDataUnsafe.auth_date = Number(initDataUnsafe.auth_date);

  function tell(message) {
    if (window.parent !== window) window.parent.postMessage({ localtg: "webapp", ...message }, "*");
  }

  const clickHandlers = [];
  const MainButton = {
    text: "CONTINUE",
    isVisible: false,
    isActive: true,
    setText(text) { this.text = String(text); return this.update(); },
    show() { this.isVisible = true; return this.update(); },
    hide() { this.isVisible = false; return this.update(); },
    enable() { this.isActive = true; return this.update(); },
    disable() { this.isActive = false; return this.update(); },
    setParams(params) {
      if ("text" in params) this.text = String(params.text);
      if ("is_visible" in params) this.isVisible = Boolean(params.is_visible);
      if ("is_active" in params) this.isActive = Boolean(params.is_active);
      return this.update();
    },
    onClick(handler) { clickHandlers.push(handler); return this; },
    offClick(handler) {
      const index = clickHandlers.indexOf(handler);
      if (index >= 0) clickHandlers.splice(index, 1);
      return this;
    },
    update() {
      tell({ type: "main_button", text: this.text, visible: this.isVisible, active: this.isActive });
      return this;
    },
  };

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || (event.data || {}).localtg !== "webapp") return;
    if (event.data.type === "main_button_pressed" && MainButton.isActive) {
      for (const handler of [...clickHandlers]) handler();
    }
  });

  window.Telegram = window.Telegram || {};
  window.Telegram.WebApp = {
    initData: initData,
    initDataUnsafe: initDataUnsafe,
    version: launch.get("tgWebAppVersion") || "7.0",
    platform: launch.get("tgWebAppPlatform") || "unknown",
    colorScheme: "light",
    themeParams: {},
    isExpanded: true,
    MainButton: MainButton,
    ready() { tell({ type: "ready" }); },
    expand() {},
    close() { tell({ type: "close" }); },
    sendData(data) { tell({ type: "send_data", data: String(data) }); },
  };
})();
