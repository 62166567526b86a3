// The sandbox dashboard: reads GET /_sandbox/overview and acts through the control API.
// No HTML is ever built from strings: every text goes in through textContent (el() below), so an
// object's reference or a receiver's answer cannot inject markup. The CSP allows this file only.
"use strict";

(() => {
  const TOKEN_KEY = "revio-sandbox-control-token";
  const POLL_MS = 2000;
  const OPEN_PURCHASE = ["created", "viewed", "error", "overdue"];
  const NOT_YET_DUE = ["created", "viewed", "error"];
  const EFT_OPEN = ["NEW", "QUEUED", "SUBMITTED", "ACCEPTED", "CUTOFF"];

  const byId = (id) => document.getElementById(id);
  let lastState = "";
  let catalogue = null;
  let timer = null;
  let tokenRequired = false;

  class AuthError extends Error {}

  // -- building the page --------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function money(minor, currency) {
    const sign = minor < 0 ? "-" : "";
    const abs = Math.abs(minor);
    const cents = String(abs % 100).padStart(2, "0");
    const symbol = currency === "ZAR" ? "R" : currency;
    return `${sign}${symbol} ${Math.floor(abs / 100)}.${cents}`;
  }

  function when(value) {
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace(".000Z", "Z");
  }

  function history(entries) {
    const list = el("ol", { class: "history" });
    for (const entry of entries || []) {
      list.append(
        el("li", {}, el("span", { class: "status", text: entry.status }), " ",
          el("time", { datetime: when(entry.timestamp), text: when(entry.timestamp) })),
      );
    }
    return list;
  }

  function table(caption, headings, rows, empty) {
    if (!rows.length) return el("p", { class: "empty", text: empty });
    const head = el("tr", {}, ...headings.map((h) => el("th", { scope: "col", text: h })));
    return el("table", {}, el("caption", { class: "visually-hidden", text: caption }),
      el("thead", {}, head), el("tbody", {}, ...rows));
  }

  function button(id, label, onClick, style) {
    return el("button", { type: "button", id, class: style || null, onclick: onClick }, label);
  }

  function pre(text, label) {
    return el("pre", { tabindex: "0", "aria-label": label }, text);
  }

  function pairs(object) {
    const list = el("dl", { class: "pairs" });
    for (const [key, value] of Object.entries(object || {})) {
      list.append(el("dt", { text: key }), el("dd", { text: value }));
    }
    return list;
  }

  // -- the sections -------------------------------------------------------------------------------

  function renderBalance(balance) {
    const rows = Object.entries(balance).map(([currency, b]) =>
      el("tr", { id: `balance-${currency}` },
        el("th", { scope: "row", text: currency }),
        el("td", { class: "num", "data-field": "balance", text: money(b.balance, currency) }),
        el("td", { class: "num", "data-field": "available_balance", text: money(b.available_balance, currency) }),
        el("td", { class: "num", text: money(b.gross_balance, currency) }),
        el("td", { class: "num", text: money(b.fee_sell, currency) }),
        el("td", { class: "num", text: money(b.pending_outgoing, currency) })));
    return table("Company balance by currency",
      ["Currency", "Balance", "Available", "Gross", "Fees", "Pending outgoing"], rows,
      "Nothing has moved yet.");
  }

  function faultSummary(fault) {
    const where = fault.kind === "http"
      ? (fault.endpoint || fault.match)
      : [fault.event_type && `event ${fault.event_type}`, fault.target && `target ${fault.target}`,
        fault.object_id && `object ${fault.object_id}`].filter(Boolean).join(", ") || "every event";
    const extra = Object.entries(fault)
      .filter(([k, v]) => !["id", "kind", "action", "count", "remaining", "endpoint", "match",
        "event_type", "target", "object_id"].includes(k) && v !== null)
      .map(([k, v]) => `${k}=${v}`).join(", ");
    return `${fault.kind} ${fault.action} on ${where}${extra ? ` (${extra})` : ""}`;
  }

  function renderFaults(faults) {
    const rows = faults.map((fault) =>
      el("tr", { id: `fault-${fault.id}`, "data-action": fault.action },
        el("td", { class: "num", text: fault.id }),
        el("td", { text: faultSummary(fault) }),
        el("td", { class: "num", "data-field": "remaining", text: fault.remaining }),
        el("td", {}, button(`fault-remove-${fault.id}`, "Remove",
          () => act(`Fault ${fault.id} removed.`, "DELETE", `faults/${fault.id}`), "secondary"))));
    return table("Active faults", ["Id", "Fault", "Uses left", "Action"], rows, "No faults are active.");
  }

  function amountInput(purchase) {
    const id = `amount-${purchase.id}`;
    return el("span", {},
      el("label", { for: id, class: "visually-hidden",
        text: `Amount to refund or charge back for ${purchase.reference || purchase.id}, in cents (empty for all)` }),
      el("input", { id, class: "amount", type: "number", min: "1", step: "1", inputmode: "numeric",
        placeholder: "cents (all)" }));
  }

  function takeBack(purchase, what) {
    const field = byId(`amount-${purchase.id}`);
    const amount = field && field.value.trim() ? Number(field.value) : null;
    if (amount !== null && (!Number.isInteger(amount) || amount < 1)) {
      showError("The amount is a whole number of cents, 1 or more.");
      return;
    }
    if (field) field.value = "";  // sent: a re-render must not offer the same amount again
    const label = what === "refund" ? "Refund" : "Chargeback";
    act(`${label} of ${purchase.reference || purchase.id} sent.`, "POST",
      `purchases/${purchase.id}/${what}`, amount === null ? {} : { amount });
  }

  function purchaseActions(purchase) {
    const p = `purchases/${purchase.id}`;
    const name = purchase.reference || purchase.id;
    const actions = el("div", { class: "actions" });
    if (OPEN_PURCHASE.includes(purchase.status)) {
      actions.append(button(`pay-${purchase.id}`, "Pay", () => act(`${name} paid.`, "POST", `${p}/pay`)));
      actions.append(button(`decline-${purchase.id}`, "Decline",
        () => act(`${name} declined.`, "POST", `${p}/decline`), "secondary"));
    }
    if (NOT_YET_DUE.includes(purchase.status)) {
      actions.append(button(`expire-${purchase.id}`, "Expire",
        () => act(`${name} is past its due date.`, "POST", `${p}/expire`), "secondary"));
    }
    if (purchase.status === "paid" && purchase.refundable_amount > 0) {
      actions.append(amountInput(purchase));
      actions.append(button(`refund-${purchase.id}`, "Refund", () => takeBack(purchase, "refund")));
      actions.append(button(`chargeback-${purchase.id}`, "Chargeback",
        () => takeBack(purchase, "chargeback"), "danger"));
    }
    return actions.childElementCount ? actions : el("span", { class: "empty", text: "none" });
  }

  function renderPurchases(purchases) {
    const rows = purchases.map((purchase) => {
      const currency = purchase.purchase.currency;
      return el("tr", { id: `purchase-${purchase.id}`, "data-status": purchase.status },
        el("td", {}, el("code", { text: purchase.id })),
        el("td", { text: purchase.reference || purchase.reference_generated }),
        el("td", { class: "num", text: money(purchase.purchase.total, currency) }),
        el("td", { class: "num", text: money(purchase.refundable_amount, currency) }),
        el("td", { class: "status", "data-field": "status", text: purchase.status }),
        el("td", {}, history(purchase.status_history)),
        el("td", {}, purchaseActions(purchase)));
    });
    return table("Purchases", ["Id", "Reference", "Total", "Refundable", "Status", "Status history", "Actions"],
      rows, "No purchases yet. Create one through the API (POST /api/v1/purchases/).");
  }

  function renderPayments(payments) {
    const rows = payments.map((payment) =>
      el("tr", { id: `payment-${payment.id}`, "data-kind": payment.kind, "data-status": payment.status },
        el("td", {}, el("code", { text: payment.id })),
        el("td", { text: payment.kind }),
        el("td", {}, el("code", { text: payment.purchase_id })),
        el("td", { class: "num", text: money(payment.amount, payment.currency) }),
        el("td", { class: "status", text: payment.status }),
        el("td", {}, history(payment.status_history))));
    return table("Refunds and chargebacks", ["Id", "Kind", "Purchase", "Amount", "Status", "Status history"],
      rows, "No refunds or chargebacks yet.");
  }

  function eftActions(payment) {
    const p = `eft/payments/${payment.id}`;
    const name = payment.contractReference;
    const actions = el("div", { class: "actions" });
    if (EFT_OPEN.includes(payment.status)) {
      actions.append(button(`eft-succeed-${payment.id}`, "Succeed",
        () => act(`${name} completed.`, "POST", `${p}/succeed`)));
      actions.append(button(`eft-fail-${payment.id}`, "Fail",
        () => act(`${name} failed.`, "POST", `${p}/fail`), "danger"));
    }
    if (payment.status === "COMPLETED") {
      actions.append(button(`eft-return-${payment.id}`, "Return",
        () => act(`${name} returned.`, "POST", `${p}/return`), "danger"));
    }
    return actions.childElementCount ? actions : el("span", { class: "empty", text: "none" });
  }

  function renderEft(payments) {
    const rows = payments.map((payment) =>
      el("tr", { id: `eft-${payment.id}`, "data-status": payment.status },
        el("td", {}, el("code", { text: payment.id })),
        el("td", { text: payment.contractReference }),
        el("td", { class: "num", text: money(payment.amountCents, "ZAR") }),
        el("td", { text: `${payment.creditor.name} ${payment.creditor.accountNumber}` }),
        el("td", { class: "status", "data-field": "status", text: payment.status }),
        el("td", {}, history(payment.statusHistory)),
        el("td", {}, eftActions(payment))));
    return table("EFT payments", ["Id", "Contract reference", "Amount", "Creditor", "Status", "Status history",
      "Actions"], rows, "No EFT payments yet. Create one through the EFT API (POST /v2/payment/eft).");
  }

  function attemptView(attempt, index) {
    const answer = attempt.status_code !== null ? `HTTP ${attempt.status_code}` : `no answer: ${attempt.error}`;
    return el("div", { class: "attempt", "data-attempt": index + 1 },
      el("p", {}, el("strong", { text: `Attempt ${index + 1}` }), ` at ${when(attempt.attempted_at)}: `,
        el("span", { "data-field": "answer", text: answer }), ` in ${attempt.duration_ms} ms`),
      el("p", { text: "Headers sent" }),
      attempt.request_headers ? pairs(attempt.request_headers) : pairs({ "X-Signature": attempt.signature }),
      el("p", { text: "The receiver's answer: headers and body" }),
      attempt.response_headers ? pairs(attempt.response_headers) : el("p", { class: "empty", text: "none" }),
      attempt.response_body !== null && attempt.response_body !== undefined
        ? pre(attempt.response_body, `Answer body of attempt ${index + 1}`) : null);
  }

  function renderDeliveries(deliveries, openIds) {
    const rows = deliveries.map((delivery) => {
      const detailsId = `delivery-details-${delivery.id}`;
      const details = el("details", { id: detailsId, open: openIds.has(detailsId) },
        el("summary", { text: `Body, headers and ${delivery.attempts.length} attempt(s)` }),
        el("p", { text: delivery.target === "eft" ? "Body (EFT callbacks are unsigned)" : "Signed body (sent as is)" }),
        pre(delivery.body, `Body of delivery ${delivery.id}`),
        delivery.signed_body !== null ? el("p", { text: "Signed over these other bytes" }) : null,
        delivery.signed_body !== null ? pre(delivery.signed_body, `Signed bytes of delivery ${delivery.id}`) : null,
        ...delivery.attempts.map(attemptView));
      return el("tr", { id: `delivery-${delivery.id}`, "data-status": delivery.status,
        "data-attempts": delivery.attempts.length },
        el("td", { class: "num", text: delivery.id }),
        el("td", { text: delivery.event_type }),
        el("td", {}, el("code", { text: delivery.object_id })),
        el("td", { text: `${delivery.target}: ${delivery.url}` }),
        el("td", { class: "status", "data-field": "status", text: delivery.status }),
        el("td", { text: [...delivery.faults, delivery.replay_of ? `replay of ${delivery.replay_of}` : null]
          .filter(Boolean).join(", ") }),
        el("td", {}, details),
        el("td", {}, button(`resend-${delivery.id}`, "Resend",
          () => act(`Delivery ${delivery.id} queued again.`, "POST", `deliveries/${delivery.id}/resend`),
          "secondary")));
    });
    return table("Deliveries", ["Id", "Event", "Object", "Receiver", "Status", "Faults", "Details", "Action"],
      rows, "No deliveries yet: register a webhook (POST /api/v1/webhooks/) or a success_callback.");
  }

  function render(state) {
    catalogue = state.fault_catalogue;
    fillFaultForm();
    // Keep what the user is doing across a re-render: focus, open details and typed amounts.
    const active = document.activeElement;
    const focused = active && active.id;
    const focusedRow = active && active.closest ? (active.closest("tr") || {}).id : null;
    const openIds = new Set([...document.querySelectorAll("details[open]")].map((d) => d.id));
    const typed = [...document.querySelectorAll("input.amount")].filter((i) => i.value).map((i) => [i.id, i.value]);
    byId("balance").replaceChildren(renderBalance(state.balance));
    byId("faults").replaceChildren(renderFaults(state.faults));
    byId("purchases").replaceChildren(renderPurchases(state.purchases));
    byId("payments").replaceChildren(renderPayments(state.payments));
    byId("eft-payments").replaceChildren(renderEft(state.eft_payments));
    byId("deliveries").replaceChildren(renderDeliveries(state.deliveries, openIds));
    for (const [id, value] of typed) {
      const input = byId(id);
      if (input) input.value = value;
    }
    if (focused && byId(focused)) {
      if (document.activeElement !== byId(focused)) byId(focused).focus();
    } else if (focusedRow && byId(focusedRow)) {
      // The button pressed is gone (a paid purchase has no Pay): stay in its row, not at the page top.
      const row = byId(focusedRow);
      const next = row.querySelector("button, input");
      if (next) next.focus();
      else { row.tabIndex = -1; row.focus(); }
    }
  }

  // -- talking to the control API -----------------------------------------------------------------

  function describe(status, data) {
    if (data && typeof data === "object") {
      const parts = [];
      for (const [key, value] of Object.entries(data)) {
        if (Array.isArray(value)) {
          for (const item of value) {
            const message = item && typeof item === "object" ? item.message || item.field : item;
            parts.push(key === "__all__" ? String(message) : `${key}: ${message}`);
          }
        } else if (key === "message") {
          parts.push(String(value));
        }
      }
      if (parts.length) return parts.join(" ");
    }
    return `The sandbox answered ${status}.`;
  }

  async function control(method, path, body) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`/_sandbox/${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit", redirect: "error",
    });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (response.status === 401) throw new AuthError(describe(401, data));
    if (!response.ok) throw new Error(describe(response.status, data));
    return data;
  }

  function showMessage(text) {
    byId("message").textContent = text;
    byId("error").textContent = "";
  }

  function showError(text) {
    byId("error").textContent = text;
  }

  function askForToken(reason) {
    stopPolling();
    byId("main").hidden = true;
    byId("token-panel").hidden = false;
    byId("forget-token").hidden = true;
    if (reason) showError(reason);
    byId("token-input").focus();
  }

  function handle(error) {
    if (error instanceof AuthError) {
      const hadToken = sessionStorage.getItem(TOKEN_KEY) !== null;
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken(hadToken ? "The sandbox refused that control token." : "The control API needs its token.");
    } else {
      showError(error.message);
    }
  }

  async function refresh() {
    try {
      const state = await control("GET", "overview");
      byId("token-panel").hidden = true;
      byId("main").hidden = false;
      byId("forget-token").hidden = !tokenRequired;
      const text = JSON.stringify(state);
      if (text !== lastState) {
        lastState = text;
        render(state);
      }
      return true;
    } catch (error) {
      handle(error);
      return false;
    }
  }

  async function act(done, method, path, body) {
    try {
      await control(method, path, body);
      showMessage(done);
    } catch (error) {
      handle(error);
    }
    await refresh();
  }

  function startPolling() {
    stopPolling();
    if (byId("auto-refresh").checked) timer = setInterval(refresh, POLL_MS);
  }

  function stopPolling() {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  // -- the fault form -----------------------------------------------------------------------------

  function fillFaultForm() {
    if (!catalogue) return;
    const kind = byId("fault-kind").value;
    const select = byId("fault-action");
    const actions = kind === "http" ? catalogue.http_actions : catalogue.webhook_actions;
    if (select.dataset.kind !== kind) {
      select.replaceChildren(...actions.map((a) => el("option", { value: a, text: a })));
      select.dataset.kind = kind;
      byId("fault-target-label").textContent = kind === "http"
        ? 'Endpoint name or "METHOD /path*"' : "Event type (a glob such as purchase.*; empty for any)";
      byId("fault-target").required = kind === "http";
    }
    const list = byId("fault-endpoints");
    if (kind === "http" && !list.childElementCount) {
      list.replaceChildren(...catalogue.endpoints.map((name) => el("option", { value: name })));
    } else if (kind !== "http") {
      list.replaceChildren();
    }
  }

  function faultSpec() {
    const kind = byId("fault-kind").value;
    let spec = {};
    const options = byId("fault-options").value.trim();
    if (options) {
      try { spec = JSON.parse(options); } catch { throw new Error("More options must be a JSON object."); }
      if (!spec || typeof spec !== "object" || Array.isArray(spec)) throw new Error("More options must be a JSON object.");
    }
    spec.action = byId("fault-action").value;
    spec.count = Number(byId("fault-count").value);
    const target = byId("fault-target").value.trim();
    if (kind === "http") {
      if (target.includes(" ")) spec.match = target; else spec.endpoint = target;
    } else if (target) {
      spec.event_type = target;
    }
    const status = byId("fault-status").value.trim();
    if (status) spec.status = Number(status);
    return [kind === "http" ? "faults/http" : "faults/webhooks", spec];
  }

  // -- start --------------------------------------------------------------------------------------

  async function start() {
    byId("refresh").addEventListener("click", refresh);
    byId("auto-refresh").addEventListener("change", startPolling);
    byId("fault-kind").addEventListener("change", fillFaultForm);
    byId("forget-token").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken("");
      showMessage("The token is forgotten.");
    });
    byId("faults-clear").addEventListener("click", () => act("Every fault is cleared.", "DELETE", "faults"));
    byId("fault-form").addEventListener("submit", (event) => {
      event.preventDefault();
      let path, spec;
      try { [path, spec] = faultSpec(); } catch (error) { showError(error.message); return; }
      act(`The ${spec.action} fault is active.`, "POST", path, spec);
    });
    byId("token-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = byId("token-input");
      sessionStorage.setItem(TOKEN_KEY, input.value);
      input.value = "";
      if (await refresh()) {
        showMessage("Token accepted.");
        startPolling();
        byId("main").focus();
      }
    });
    try {
      const health = await (await fetch("/_sandbox/health", { cache: "no-store", credentials: "omit" })).json();
      tokenRequired = Boolean(health.control_token_required);
    } catch {
      showError("The sandbox does not answer.");
      return;
    }
    if (tokenRequired && sessionStorage.getItem(TOKEN_KEY) === null) {
      askForToken("");
      return;
    }
    if (await refresh()) startPolling();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
