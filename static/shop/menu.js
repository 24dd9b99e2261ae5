// The demo's Mini App: pick dishes, then the MainButton orders them. The order is sent with
// the Mini App's initData (who orders) and an Idempotency-Key made once per order, so a
// retry after a lost answer places the same order, not a second one.
"use strict";
(function () {
  const app = window.Telegram.WebApp;
  const config = JSON.parse(document.getElementById("menu-config").textContent);
  const status = document.getElementById("status");
  const cart = {};
  let orderKey = null; // one per order, reused by its retries
  let sending = false;

  function total() {
    return Object.values(cart).reduce((sum, quantity) => sum + quantity, 0);
  }

  function refresh() {
    const count = total();
    app.MainButton.setText(count ? `Order (${count})` : "Order");
    if (count) app.MainButton.show(); else app.MainButton.hide();
  }

  for (const dish of document.querySelectorAll(".dish")) {
    const key = dish.dataset.dish;
    const shown = dish.querySelector(".dish-quantity");
    const change = (delta) => {
      cart[key] = Math.max(0, Math.min(20, (cart[key] || 0) + delta));
      if (!cart[key]) delete cart[key];
      shown.textContent = String(cart[key] || 0);
      orderKey = null; // another cart is another order
      refresh();
    };
    dish.querySelector(".dish-more").addEventListener("click", () => change(1));
    dish.querySelector(".dish-less").addEventListener("click", () => change(-1));
  }

  async function order() {
    if (sending || !total()) return;
    sending = true;
    app.MainButton.disable();
    orderKey = orderKey || crypto.randomUUID();
    status.textContent = "Ordering…";
    try {
      const response = await fetch(config.orderUrl, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "Authorization": "tma " + app.initData,
          "Idempotency-Key": orderKey,
        },
        body: JSON.stringify({ items: cart }),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok && answer.ok) {
        status.textContent = `Order #${answer.order} placed.`;
        setTimeout(() => app.close(), 600);
        return;
      }
      status.textContent = answer.error || `The shop answered ${response.status}: try again.`;
    } catch (error) {
      status.textContent = "The shop cannot be reached: try again.";
    } finally {
      sending = false;
      app.MainButton.enable();
    }
  }

  app.MainButton.onClick(order);
  app.ready();
  refresh();
})();
