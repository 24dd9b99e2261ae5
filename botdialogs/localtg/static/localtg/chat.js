// The chat playground: one local Telegram chat, live over a websocket.
// Everything the bot or the user wrote is shown with textContent, never as HTML.
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const errorBox = document.getElementById("error");
  const statusBox = document.getElementById("status");
  const replyKeyboard = document.getElementById("reply-keyboard");
  const toast = document.getElementById("toast");
  const alertBox = document.getElementById("alert");
  const blockButton = document.getElementById("block");
  const blockedBanner = document.getElementById("blocked");
  const SAFE_LINK = /^(https?:|tg:)/i;

  const messages = new Map(); // message_id -> message view
  let revision = 0;
  let loaded = false; // answers older than the page's first read are not shown again
  let socket = null;
  let retryDelay = 500;
  let gone = false;
  let toastTimer = null;
  let blocked = false;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function setStatus(state, text) {
    statusBox.dataset.state = state;
    statusBox.textContent = text;
  }

  function fileUrl(fileId) {
    return config.fileUrl.replace("FILE_ID", encodeURIComponent(fileId));
  }

  function time(iso) {
    const date = new Date(iso);
    return isNaN(date) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // Telegram keeps plain text plus entities (offsets in UTF-16 code units, as JavaScript
  // strings count): each stretch between entity edges is a text node inside the elements of
  // the entities that cover it.
  const ENTITY_TAGS = {
    bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "code",
    text_link: "a", spoiler: "span", blockquote: "span",
  };

  function entityElement(entity) {
    const node = document.createElement(ENTITY_TAGS[entity.type]);
    if (entity.type === "pre") node.className = "lt-pre";
    if (entity.type === "spoiler") node.className = "lt-spoiler";
    if (entity.type === "blockquote") node.className = "lt-quote";
    if (entity.type === "text_link" && SAFE_LINK.test(String(entity.url || ""))) {
      node.href = String(entity.url);
      node.target = "_blank";
      node.rel = "noopener noreferrer";
    }
    return node;
  }

  function formatted(text, entities) {
    const shown = (entities || []).filter((e) => ENTITY_TAGS[e.type]);
    const edges = new Set([0, text.length]);
    for (const e of shown) {
      edges.add(Math.min(e.offset, text.length));
      edges.add(Math.min(e.offset + e.length, text.length));
    }
    const cuts = [...edges].sort((a, b) => a - b);
    const fragment = document.createDocumentFragment();
    for (let i = 0; i + 1 < cuts.length; i++) {
      const [start, end] = [cuts[i], cuts[i + 1]];
      let node = document.createTextNode(text.slice(start, end));
      const covering = shown.filter((e) => e.offset <= start && e.offset + e.length >= end);
      for (const entity of covering.reverse()) {
        const wrapper = entityElement(entity);
        wrapper.append(node);
        node = wrapper;
      }
      fragment.append(node);
    }
    return fragment;
  }

  function renderFile(message, body) {
    if (message.photo_file) {
      const photo = message.photo_file;
      if (photo.kept) {
        const img = el("img", "lt-photo");
        img.src = fileUrl(photo.file_id);
        img.alt = message.caption || "photo";
        body.append(img);
      } else {
        body.append(el("div", "lt-file", "🖼 photo (not kept)"));
      }
    }
    if (message.document_file) {
      const doc = message.document_file;
      const label = "📄 " + (doc.name || "document");
      if (doc.kept) {
        const link = el("a", "lt-file", label);
        link.href = fileUrl(doc.file_id);
        link.setAttribute("download", doc.name || "document");
        body.append(link);
      } else {
        body.append(el("div", "lt-file", label + " (not kept)"));
      }
    }
  }

  function renderInlineKeyboard(message, bubble) {
    const rows = ((message.reply_markup || {}).inline_keyboard) || [];
    if (!rows.length) return;
    const keyboard = el("div", "lt-inline");
    for (const row of rows) {
      const line = el("div", "lt-inline-row");
      for (const button of row) {
        if (button.url !== undefined) {
          const link = el("a", "lt-inline-button", String(button.text || "") + " ↗");
          if (SAFE_LINK.test(String(button.url))) {
            link.href = String(button.url);
            link.target = "_blank";
            link.rel = "noopener noreferrer";
          }
          line.append(link);
        } else if (button.web_app !== undefined && window.localtgWebAppPanel) {
          // A Mini App: opened in the panel of webapp_panel.js, with signed initData.
          const open = el("button", "lt-inline-button", String(button.text || "") + " ▣");
          open.type = "button";
          open.addEventListener("click", () => window.localtgWebAppPanel.open(
            String((button.web_app || {}).url || ""), String(button.text || "")));
          line.append(open);
        } else if (button.pay === true) {
          // Telegram's Pay button of an invoice: pre-checkout, then the payment.
          const pay = el("button", "lt-inline-button lt-pay-button", String(button.text || ""));
          pay.type = "button";
          pay.addEventListener("click", () => payInvoice(message.message_id, pay));
          line.append(pay);
        } else {
          const press = el("button", "lt-inline-button", String(button.text || ""));
          press.type = "button";
          if (button.callback_data !== undefined) {
            press.addEventListener("click", () =>
              pressButton(message.message_id, String(button.callback_data), press));
          } else {
            press.disabled = true;
          }
          line.append(press);
        }
      }
      keyboard.append(line);
    }
    bubble.append(keyboard);
  }

  function renderMessage(message) {
    const item = el("div", "lt-msg " + (message.from_bot ? "lt-from-bot" : "lt-from-user"));
    item.dataset.messageId = message.message_id;
    item.dataset.revision = message.revision;
    if (message.deleted) {
      item.classList.add("lt-deleted");
      item.append(el("div", "lt-bubble", "Message deleted"));
      return item;
    }
    const bubble = el("div", "lt-bubble");
    renderFile(message, bubble);
    const text = message.text || message.caption;
    if (text) {
      const shown = el("div", "lt-text");
      shown.append(formatted(text, message.entities));
      bubble.append(shown);
    }
    const meta = el("div", "lt-meta");
    if (message.edit_count) meta.append(el("span", "lt-edited", "edited"));
    meta.append(el("span", "lt-time", time(message.date)));
    bubble.append(meta);
    item.append(bubble);
    renderInlineKeyboard(message, item);
    return item;
  }

  function place(message) {
    const fresh = renderMessage(message);
    const old = list.querySelector(`[data-message-id="${message.message_id}"]`);
    if (old) {
      old.replaceWith(fresh);
      return false;
    }
    // Insert in message-id order (a late catch-up may bring an older message).
    let after = null;
    for (const child of list.children) {
      if (Number(child.dataset.messageId) > message.message_id) { after = child; break; }
    }
    list.insertBefore(fresh, after);
    return true;
  }

  function renderReplyKeyboard() {
    const ids = [...messages.keys()].sort((a, b) => b - a);
    let markup = null;
    let anchor = 0;
    for (const id of ids) {
      const message = messages.get(id);
      const reply = message.reply_markup || {};
      if (message.from_bot && !message.deleted && (reply.keyboard || reply.remove_keyboard)) {
        markup = reply;
        anchor = id;
        break;
      }
    }
    replyKeyboard.replaceChildren();
    const userSpokeSince = ids.some((id) => id > anchor && !messages.get(id).from_bot);
    if (!markup || !markup.keyboard || (markup.one_time_keyboard && userSpokeSince)) {
      replyKeyboard.hidden = true;
      input.placeholder = "Message";
      return;
    }
    input.placeholder = String(markup.input_field_placeholder || "Message");
    for (const row of markup.keyboard) {
      const line = el("div", "lt-reply-row");
      for (const button of row) {
        const label = typeof button === "string" ? button : String(button.text || "");
        const key = el("button", "lt-reply-button", label);
        key.type = "button";
        key.addEventListener("click", () => sendText(label));
        line.append(key);
      }
      replyKeyboard.append(line);
    }
    replyKeyboard.hidden = false;
  }

  function showBlocked(value) {
    blocked = value;
    blockButton.textContent = value ? "Unblock" : "Block bot";
    blockButton.setAttribute("aria-pressed", String(value));
    blockedBanner.hidden = !value;
  }

  function showToast(text) {
    toast.textContent = text;
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, 3000);
  }

  function showAlert(text) {
    document.getElementById("alert-text").textContent = text;
    alertBox.hidden = false;
    document.getElementById("alert-ok").focus();
  }

  function apply(changes) {
    const before = revision;
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    let added = false;
    for (const message of changes.messages || []) {
      const known = messages.get(message.message_id);
      if (known && known.revision > message.revision) continue;
      messages.set(message.message_id, message);
      added = place(message) || added;
    }
    if (loaded) {
      for (const answer of changes.callback_answers || []) {
        if (answer.revision > before && answer.text) {
          if (answer.show_alert) showAlert(answer.text); else showToast(answer.text);
        }
      }
    }
    revision = Math.max(revision, changes.revision || 0);
    loaded = true;
    if (typeof changes.blocked === "boolean") showBlocked(changes.blocked);
    renderReplyKeyboard();
    if (added && (nearBottom || before === 0)) list.scrollTop = list.scrollHeight;
  }

  async function post(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (error) {
      showError("The server cannot be reached. Nothing was sent.");
      return false;
    }
    let answer = {};
    try { answer = await response.json(); } catch (error) { answer = {}; }
    if (!response.ok || !answer.ok) {
      showError(answer.description || `The server answered ${response.status}.`);
      return false;
    }
    showError("");
    sync();
    return answer;
  }

  async function sendText(text) {
    if (!text.trim()) return false;
    return post(config.messagesUrl, { text: text });
  }

  async function pressButton(messageId, data, button) {
    button.classList.add("lt-pressed");
    await post(config.pressUrl, { data: data, message_id: messageId });
    button.classList.remove("lt-pressed");
  }

  async function payInvoice(messageId, button) {
    button.classList.add("lt-pressed");
    button.disabled = true;  // the bot has up to 10 seconds to answer its pre-checkout query
    const answer = await post(config.payUrl, { message_id: messageId });
    button.disabled = false;
    button.classList.remove("lt-pressed");
    if (answer && !answer.result.paid) {
      showError(`Payment failed: ${answer.result.error_message}`);
    }
  }

  async function fetchSince() {
    try {
      const response = await fetch(`${config.messagesUrl}?since=${revision}`);
      const answer = await response.json();
      if (answer.ok) apply(answer.result);
    } catch (error) {
      setStatus("offline", "offline");
    }
  }

  function sync() {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "sync", since: revision }));
    } else {
      fetchSince();
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + config.socketPath);
    setStatus("connecting", "connecting…");
    socket.addEventListener("open", () => {
      retryDelay = 500;
      setStatus("online", "online");
      socket.send(JSON.stringify({ type: "sync", since: revision }));
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (error) { return; }
      if (frame.type === "changes") apply(frame);
      else if (frame.type === "error") showError(frame.description);
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 4404) {
        gone = true;
        setStatus("gone", "chat not found");
        showError("This chat does not exist (any more).");
        return;
      }
      setStatus("offline", "reconnecting…");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 5000);
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    if (await sendText(text)) {
      if (input.value === text) input.value = "";
      input.focus();
    }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  blockButton.addEventListener("click", () => post(config.blockUrl, { blocked: !blocked }));
  document.getElementById("alert-ok").addEventListener("click", () => { alertBox.hidden = true; });
  window.addEventListener("focus", () => { if (!gone) sync(); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !gone) sync();
  });

  fetchSince();
  connect();
})();
