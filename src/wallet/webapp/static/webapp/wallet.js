// The reference wallet page (ADR 0010). Plain JavaScript, no library, no build step; it talks only to the
// public API under /api/v1/ on this origin, as any frontend would.
//
// Rules kept throughout: text from the API reaches the page only through textContent (never innerHTML;
// the page's Trusted Types policy would refuse it anyway); tokens never go into a URL; the access token
// lives in memory only, the refresh token in sessionStorage so a visit to Revio's checkout and back (a
// full page load in the same tab) does not log the user out.
"use strict";

(function () {
  const API = "/api/v1";
  const REFRESH_KEY = "wallet.refresh";
  const DEPOSIT_PATH = /^\/deposits\/([0-9a-f-]{36})\/?$/i;
  // Where the emails link: a transaction, the email settings, the password-reset form.
  const TRANSACTION_PATH = /^\/transactions\/([0-9a-f-]{36})\/?$/i;
  const PREFERENCES_PATH = "/settings/notifications";
  const RESET_PATH = "/reset-password";
  const DEPOSIT_DONE = ["completed", "failed", "cancelled", "expired"];
  const WITHDRAWAL_DONE = ["completed", "failed", "returned"];
  const POLL_FAST_MS = 1000;
  const POLL_SLOW_MS = 5000;
  const POLL_GIVE_UP_MS = 3 * 60 * 1000;

  const $ = (id) => document.getElementById(id);

  // -- session -------------------------------------------------------------------------------------------

  const session = {
    access: null,
    refreshing: null, // the one refresh in flight: concurrent 401s share it (refresh tokens are single-use)
    get refresh() {
      return sessionStorage.getItem(REFRESH_KEY);
    },
    store(tokens) {
      this.access = tokens.access;
      sessionStorage.setItem(REFRESH_KEY, tokens.refresh);
    },
    clear() {
      this.access = null;
      sessionStorage.removeItem(REFRESH_KEY);
    },
  };

  class ApiError extends Error {
    constructor(status, code, message, fields) {
      super(message);
      this.status = status;
      this.code = code;
      this.fields = fields || {};
    }
    // 5xx, a proxy's page, a dropped connection: the request may or may not have taken effect.
    get unknownOutcome() {
      return this.status === 0 || this.status >= 500 || this.code === "unexpected_response";
    }
  }

  async function send(method, path, body, extraHeaders, token) {
    const headers = { Accept: "application/json", ...extraHeaders };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit", // the API authenticates with the bearer token only
        cache: "no-store",
        redirect: "error",
      });
    } catch (err) {
      throw new ApiError(0, "network_error", "Could not reach the wallet server. Check your connection and try again.");
    }
    return response;
  }

  async function errorFrom(response) {
    let data = null;
    if ((response.headers.get("Content-Type") || "").includes("application/json")) {
      data = await response.json().catch(() => null);
    }
    const error = data && data.error;
    if (error && typeof error.message === "string") {
      const fields = error.details && typeof error.details.fields === "object" ? error.details.fields : {};
      return new ApiError(response.status, String(error.code || "error"), error.message, fields);
    }
    return new ApiError(
      response.status,
      "unexpected_response",
      `The server answered ${response.status} without an explanation. Try again in a moment.`,
    );
  }

  async function refreshTokens() {
    if (!session.refreshing) {
      session.refreshing = (async () => {
        const refresh = session.refresh;
        if (!refresh) return false;
        const response = await send("POST", "/auth/token/refresh", { refresh });
        if (response.ok) {
          session.store(await response.json());
          return true;
        }
        if (response.status === 401 || response.status === 400) {
          session.clear(); // revoked, expired or already used: this session is over
          return false;
        }
        throw await errorFrom(response);
      })().finally(() => {
        session.refreshing = null;
      });
    }
    return session.refreshing;
  }

  // One API call: JSON in and out; one retry after refreshing the tokens when the access token has expired.
  // Calls that fail together share one refresh, and a call whose token was already replaced by another's
  // refresh just retries with the new one: a refresh token works once, so a second refresh would fail.
  async function api(method, path, body, options = {}) {
    const headers = options.headers || {};
    const authed = options.auth !== false;
    const used = authed ? session.access : null;
    let response = await send(method, path, body, headers, used);
    if (response.status === 401 && authed && session.refresh) {
      let renewed = true;
      if (session.refreshing) {
        renewed = await session.refreshing;
      } else if (!session.access || session.access === used) {
        renewed = await refreshTokens();
      }
      if (renewed && session.access) {
        response = await send(method, path, body, headers, session.access);
      }
    }
    if (response.status === 401 && options.auth !== false) {
      session.clear();
      showSignedOut("Your session has ended. Please log in again.");
    }
    if (!response.ok) throw await errorFrom(response);
    if (options.raw) return response;
    if (response.status === 204) return null;
    return response.json();
  }

  // -- formatting and input ------------------------------------------------------------------------------

  // Minor units to "1 234.56 ZAR" with integer arithmetic only: money never becomes a float here.
  function money(minor, currency) {
    if (typeof minor !== "number" || !Number.isInteger(minor)) return "–";
    const sign = minor < 0 ? "−" : "";
    const abs = Math.abs(minor);
    const major = Math.floor(abs / 100)
      .toString()
      .replace(/\B(?=(\d{3})+(?!\d))/g, " ");
    const cents = String(abs % 100).padStart(2, "0");
    return `${sign}${major}.${cents} ${currency || ""}`.trim();
  }

  // "100", "100.5", "100,50" to minor units; null when it is not an amount.
  function parseAmount(text) {
    const match = /^\s*(\d{1,9})(?:[.,](\d{1,2}))?\s*$/.exec(text);
    if (!match) return null;
    return parseInt(match[1], 10) * 100 + parseInt((match[2] || "0").padEnd(2, "0"), 10);
  }

  function when(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    return isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
  }

  const STATUS_LABELS = {
    pending: "Pending",
    processing: "Processing",
    completed: "Completed",
    failed: "Failed",
    cancelled: "Cancelled",
    expired: "Expired",
    returned: "Returned by the bank",
  };
  const label = (status) => STATUS_LABELS[status] || String(status);

  function setStatus(text) {
    $("status").textContent = text;
  }

  // Idempotency-Key for a money POST: kept on the form until the API gives a definite answer, so that
  // submitting again after a timeout repeats the same request instead of making a second one.
  function uuid4() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function idempotencyKey(form, body) {
    const fingerprint = JSON.stringify(body);
    if (form.dataset.keyFor !== fingerprint) {
      form.dataset.key = uuid4();
      form.dataset.keyFor = fingerprint;
    }
    return form.dataset.key;
  }

  function forgetIdempotencyKey(form) {
    delete form.dataset.key;
    delete form.dataset.keyFor;
  }

  // -- form errors ---------------------------------------------------------------------------------------

  // {"bank_account": {"bank_code": ["..."]}} to [["bank_code", "..."]]: the API nests the bank details.
  function flatten(fields, out = []) {
    for (const [name, value] of Object.entries(fields || {})) {
      if (Array.isArray(value)) {
        out.push([name, value.map(String).join(" ")]);
      } else if (value && typeof value === "object") {
        flatten(value, out);
      } else {
        out.push([name, String(value)]);
      }
    }
    return out;
  }

  function clearErrors(form, prefix) {
    $(prefix + "-error").textContent = "";
    delete $(prefix + "-error").dataset.code;
    for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  function showError(form, prefix, error) {
    const summary = $(prefix + "-error");
    const unplaced = [];
    let first = null;
    for (const [name, message] of flatten(error.fields)) {
      const slot = $(`${prefix}-${name}-error`);
      const input = slot && form.querySelector(`[aria-describedby~="${prefix}-${name}-error"]`);
      if (slot && input) {
        slot.textContent = message;
        input.setAttribute("aria-invalid", "true");
        first = first || input;
      } else {
        unplaced.push(message);
      }
    }
    summary.dataset.code = error.code;
    summary.textContent = [error.message, ...unplaced].join(" ");
    // After the form is enabled again (a disabled input cannot take focus).
    if (first) setTimeout(() => first.focus(), 0);
  }

  function busy(form, on) {
    for (const el of form.querySelectorAll("button, input, select")) el.disabled = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  // -- views ---------------------------------------------------------------------------------------------

  function showSignedOut(message) {
    stopAllPolls();
    $("reset").hidden = true;
    $("wallet").hidden = true;
    $("session").hidden = true;
    $("auth").hidden = false;
    setStatus(message || "");
    $("auth-heading").focus();
  }

  async function showSignedIn() {
    $("reset").hidden = true;
    $("auth").hidden = true;
    $("wallet").hidden = false;
    $("session").hidden = false;
    try {
      const me = await api("GET", "/me");
      $("session-email").textContent = me.email;
    } catch (err) {
      if (err.status === 401) return;
      setStatus(err.message);
    }
    const depositId = (DEPOSIT_PATH.exec(location.pathname) || [])[1];
    const transactionId = (TRANSACTION_PATH.exec(location.pathname) || [])[1];
    if (depositId) {
      showDepositReturn(depositId);
    } else if (transactionId) {
      showDetail(transactionId);
    } else if (location.pathname === PREFERENCES_PATH) {
      $("preferences-heading").focus();
    } else {
      $("wallet-heading").focus();
    }
    await Promise.all([loadBalance(), loadHistory(), loadPreferences()]);
  }

  // -- balance -------------------------------------------------------------------------------------------

  // Reads can overlap (a refresh after a credit while the first read is still out): only the answer to
  // the latest one is shown, or an older answer could overwrite a newer balance.
  const latest = { balance: 0, history: 0 };

  async function loadBalance() {
    const seq = ++latest.balance;
    try {
      const balance = await api("GET", "/balance");
      if (seq !== latest.balance) return;
      for (const el of document.querySelectorAll(".currency-code")) el.textContent = balance.currency;
      $("balance-available").textContent = money(balance.available, balance.currency);
      $("balance-reserved").textContent = money(balance.reserved, balance.currency);
      // Fields the API may add: shown only when it returns them.
      for (const field of ["hold", "debt"]) {
        const present = typeof balance[field] === "number";
        for (const el of document.querySelectorAll(`.optional[data-field="${field}"]`)) el.hidden = !present;
        $("balance-" + field).textContent = present ? money(balance[field], balance.currency) : "";
      }
    } catch (err) {
      if (err.status !== 401) setStatus("Could not load your balance: " + err.message);
    }
  }

  // -- polling -------------------------------------------------------------------------------------------

  const polls = new Map();

  function stopAllPolls() {
    for (const timer of polls.values()) clearTimeout(timer);
    polls.clear();
  }

  // Reads `path` until `done(txn)`; `onUpdate` sees every answer. Gives up after a few minutes and says so.
  function poll(name, path, done, onUpdate, onGiveUp) {
    clearTimeout(polls.get(name));
    const started = Date.now();
    const tick = async () => {
      let txn = null;
      try {
        txn = await api("GET", path);
        onUpdate(txn);
      } catch (err) {
        if (err.status === 401 || err.status === 404) {
          polls.delete(name);
          if (err.status === 404) onUpdate(null, err);
          return;
        }
        // Transient trouble: keep trying.
      }
      if (txn && done(txn)) {
        polls.delete(name);
        return;
      }
      const elapsed = Date.now() - started;
      if (elapsed > POLL_GIVE_UP_MS) {
        polls.delete(name);
        onGiveUp();
        return;
      }
      polls.set(name, setTimeout(tick, elapsed < 30000 ? POLL_FAST_MS : POLL_SLOW_MS));
    };
    tick();
  }

  // -- deposits ------------------------------------------------------------------------------------------

  async function onDeposit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form, "deposit");
    const amount = parseAmount($("deposit-amount").value);
    if (amount === null) {
      showError(form, "deposit", new ApiError(400, "invalid_amount", "Enter an amount such as 100.00.", { amount: ["Enter an amount such as 100.00."] }));
      return;
    }
    const body = { amount };
    busy(form, true);
    setStatus("Creating your deposit…");
    try {
      const deposit = await api("POST", "/deposits", body, {
        headers: { "Idempotency-Key": idempotencyKey(form, body) },
      });
      forgetIdempotencyKey(form);
      if (!deposit.checkout_url || !/^https?:\/\//.test(deposit.checkout_url)) {
        throw new ApiError(0, "no_checkout", "The deposit was created but has no payment page. Check your history.");
      }
      setStatus("Taking you to the payment page…");
      location.assign(deposit.checkout_url);
    } catch (err) {
      if (err.status !== 401) {
        if (!err.unknownOutcome) forgetIdempotencyKey(form);
        showError(form, "deposit", err);
        setStatus("");
      }
      busy(form, false);
    }
  }

  function showDepositReturn(depositId) {
    const panel = $("deposit-return");
    const result = new URLSearchParams(location.search).get("result");
    const message = $("deposit-return-message");
    panel.hidden = false;
    $("deposit-return-heading").focus();
    message.textContent =
      result === "failure"
        ? "The payment was not completed at the checkout. Checking the deposit…"
        : "Waiting for Revio Pay to confirm your payment…";
    setStatus(message.textContent);
    poll(
      "deposit",
      `/deposits/${depositId}`,
      (txn) => DEPOSIT_DONE.includes(txn.status),
      (txn, err) => {
        if (!txn) {
          message.textContent = err.message;
          setStatus(err.message);
          return;
        }
        $("deposit-return-amount").textContent = money(txn.amount, txn.currency);
        const status = $("deposit-return-status");
        status.textContent = label(txn.status);
        status.dataset.status = txn.status;
        let text = null;
        if (txn.status === "completed") {
          text = `Your deposit of ${money(txn.amount, txn.currency)} has been credited.`;
        } else if (DEPOSIT_DONE.includes(txn.status)) {
          text = `Your deposit was not credited (${label(txn.status).toLowerCase()}).`;
          if (txn.failure_reason) text += " " + txn.failure_reason;
        } else if (result === "failure") {
          text = "The payment was not completed. You can try again with a new deposit.";
        }
        if (text) {
          message.textContent = text;
          setStatus(text);
        }
        if (DEPOSIT_DONE.includes(txn.status)) {
          loadBalance();
          loadHistory();
          // The cached balance is invalidated just after the credit commits: a read in that instant can
          // still see the figure from before, so read it once more a moment later.
          setTimeout(loadBalance, 1500);
        }
      },
      () => {
        const text = "Revio Pay has not confirmed the payment yet. It will be credited as soon as it does; check back later.";
        message.textContent = text;
        setStatus(text);
      },
    );
  }

  function dismissDepositReturn() {
    clearTimeout(polls.get("deposit"));
    polls.delete("deposit");
    $("deposit-return").hidden = true;
    history.replaceState(null, "", "/");
    $("wallet-heading").focus();
  }

  // -- withdrawals ---------------------------------------------------------------------------------------

  async function onWithdraw(event) {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form, "withdraw");
    const amount = parseAmount($("withdraw-amount").value);
    if (amount === null) {
      const msg = "Enter an amount such as 50.00.";
      showError(form, "withdraw", new ApiError(400, "invalid_amount", msg, { amount: [msg] }));
      return;
    }
    const body = {
      amount,
      bank_account: {
        account_holder: $("withdraw-account-holder").value.trim(),
        account_number: $("withdraw-account-number").value.replace(/\s+/g, ""),
        bank_code: $("withdraw-bank-code").value.replace(/\s+/g, ""),
        account_type: $("withdraw-account-type").value,
      },
    };
    // A new bank account needs the current password (step-up); it is sent only when typed, never stored.
    const stepUp = $("withdraw-step-up").value;
    if (stepUp) body.step_up_password = stepUp;
    busy(form, true);
    setStatus("Sending your withdrawal…");
    try {
      const withdrawal = await api("POST", "/withdrawals", body, {
        headers: { "Idempotency-Key": idempotencyKey(form, body) },
      });
      forgetIdempotencyKey(form);
      form.reset();
      showWithdrawal(withdrawal);
      loadBalance();
      loadHistory();
      if (!WITHDRAWAL_DONE.includes(withdrawal.status)) {
        poll(
          "withdrawal",
          `/withdrawals/${withdrawal.id}`,
          (txn) => WITHDRAWAL_DONE.includes(txn.status),
          (txn) => {
            if (!txn) return;
            showWithdrawal(txn);
            if (WITHDRAWAL_DONE.includes(txn.status)) {
              loadBalance();
              loadHistory();
            }
          },
          () => setStatus("Your withdrawal is still on its way; its status will update in your history."),
        );
      }
    } catch (err) {
      if (err.status !== 401) {
        if (err.unknownOutcome) {
          err.message += " Your withdrawal may or may not have been accepted: check your history before trying again.";
        } else {
          forgetIdempotencyKey(form);
        }
        if (err.code === "step_up_required" || err.code === "step_up_failed") {
          const msg = err.code === "step_up_required"
            ? "This is a new bank account: enter your password to confirm the withdrawal."
            : "That password is not right.";
          err.fields = { ...(err.fields || {}), step_up_password: [msg] };
        }
        showError(form, "withdraw", err);
        setStatus("");
      }
    } finally {
      busy(form, false);
    }
  }

  function showWithdrawal(txn) {
    const messages = {
      pending: "Your withdrawal is queued and will be sent shortly.",
      processing: "Your withdrawal is on its way to your bank.",
      completed: "Your withdrawal has been paid to your bank.",
      failed: "Your withdrawal failed and the amount is back in your balance.",
      returned: "Your bank returned the withdrawal; the amount is back in your balance.",
    };
    let text = messages[txn.status] || label(txn.status);
    if (txn.failure_reason) text += " " + txn.failure_reason;
    $("withdraw-result").hidden = false;
    $("withdraw-result-message").textContent = text;
    $("withdraw-result-amount").textContent = money(txn.amount, txn.currency);
    const status = $("withdraw-result-status");
    status.textContent = label(txn.status);
    status.dataset.status = txn.status;
    setStatus(text);
  }

  // -- history and details -------------------------------------------------------------------------------

  let nextPage = null;

  // The API's `next` is an absolute URL; only its path and query on our own API are followed.
  function sameOriginApiPath(url) {
    try {
      const parsed = new URL(url, location.origin);
      if (parsed.origin !== location.origin || !parsed.pathname.startsWith(API + "/")) return null;
      return parsed.pathname.slice(API.length) + parsed.search;
    } catch (err) {
      return null;
    }
  }

  async function loadHistory(more) {
    const path = more && nextPage ? nextPage : "/transactions?page_size=20";
    const seq = ++latest.history;
    try {
      const page = await api("GET", path);
      if (seq !== latest.history) return;
      const rows = $("history-rows");
      if (!more) rows.replaceChildren();
      for (const txn of page.results) rows.append(historyRow(txn));
      nextPage = page.next ? sameOriginApiPath(page.next) : null;
      $("history-more").hidden = !nextPage;
      $("history-empty").hidden = rows.children.length > 0;
    } catch (err) {
      if (err.status !== 401) setStatus("Could not load your history: " + err.message);
    }
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function historyRow(txn) {
    const tr = document.createElement("tr");
    tr.dataset.id = txn.id;
    tr.dataset.type = txn.type;
    tr.dataset.status = txn.status;
    const kind = txn.type === "deposit" ? "Deposit" : txn.type === "withdrawal" ? "Withdrawal" : String(txn.type);
    tr.append(cell(when(txn.created_at)), cell(kind), cell(money(txn.amount, txn.currency)), cell(label(txn.status)));
    const td = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary details";
    button.textContent = "Details";
    button.setAttribute("aria-label", `Details of the ${kind.toLowerCase()} of ${money(txn.amount, txn.currency)}`);
    button.addEventListener("click", () => showDetail(txn.id));
    td.append(button);
    tr.append(td);
    return tr;
  }

  async function showDetail(id) {
    try {
      const txn = await api("GET", `/transactions/${id}`);
      const facts = [
        ["Reference", txn.id],
        ["Type", txn.type],
        ["Amount", money(txn.amount, txn.currency)],
        ["Status", label(txn.status)],
        ["Created", when(txn.created_at)],
        ["Last update", when(txn.updated_at)],
        ["Completed", when(txn.completed_at)],
      ];
      if (txn.failure_reason) facts.push(["Reason", txn.failure_reason]);
      const bank = txn.bank_account;
      if (bank) {
        facts.push(["Account holder", bank.account_holder]);
        facts.push(["Account number", bank.account_number_masked]);
        facts.push(["Branch code", bank.bank_code]);
        facts.push(["Account type", bank.account_type]);
      }
      const dl = $("detail-facts");
      dl.replaceChildren();
      for (const [term, value] of facts) {
        const dt = document.createElement("dt");
        dt.textContent = term;
        const dd = document.createElement("dd");
        dd.textContent = value == null ? "–" : String(value);
        dd.dataset.term = term;
        dl.append(dt, dd);
      }
      $("detail").hidden = false;
      $("detail").dataset.id = txn.id;
      $("detail-heading").focus();
    } catch (err) {
      if (err.status !== 401) setStatus("Could not load the transaction: " + err.message);
    }
  }

  // -- statement -----------------------------------------------------------------------------------------

  async function onStatement(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const message = $("statement-message");
    message.textContent = "";
    delete message.dataset.code;
    const from = $("statement-from").value;
    const to = $("statement-to").value;
    if (!from || !to) {
      message.textContent = "Choose the first and the last day of the statement.";
      return;
    }
    // The API takes instants and a half-open period: from the first day's local midnight to the end of the
    // last day (or now, if that is still ahead: the API refuses a period that ends in the future).
    const start = new Date(`${from}T00:00:00`);
    const end = new Date(`${to}T00:00:00`);
    end.setDate(end.getDate() + 1);
    const query = new URLSearchParams({
      from: start.toISOString(),
      to: new Date(Math.min(end.getTime(), Date.now())).toISOString(),
      format: "csv",
    });
    busy(form, true);
    try {
      // Fetched with the bearer token (never a token in the URL), then handed to the browser as a file.
      const response = await api("GET", `/statements?${query}`, undefined, { raw: true });
      const blob = await response.blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `statement-${from}-to-${to}.csv`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      setStatus("Your statement has been downloaded.");
    } catch (err) {
      if (err.status === 404) {
        message.dataset.code = "statements_unavailable";
        message.textContent = "Statements are not available on this server yet. Your history above lists every transaction.";
      } else if (err.status !== 401) {
        message.dataset.code = err.code;
        message.textContent = err.message;
      }
    } finally {
      busy(form, false);
    }
  }

  // -- email settings ------------------------------------------------------------------------------------

  async function loadPreferences() {
    try {
      const preferences = await api("GET", "/me/notifications");
      $("pref-transaction-emails").checked = preferences.transaction_emails === true;
    } catch (err) {
      if (err.status !== 401) setStatus("Could not load your email settings: " + err.message);
    }
  }

  async function onPreferences(event) {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form, "preferences");
    busy(form, true);
    try {
      const preferences = await api("PATCH", "/me/notifications", {
        transaction_emails: $("pref-transaction-emails").checked,
      });
      $("pref-transaction-emails").checked = preferences.transaction_emails === true;
      setStatus("Your email settings are saved.");
    } catch (err) {
      if (err.status !== 401) showError(form, "preferences", err);
    } finally {
      busy(form, false);
    }
  }

  // -- password reset ------------------------------------------------------------------------------------

  let resetToken = null; // from the emailed link; kept in memory only, and taken out of the address bar

  async function onForgot(event) {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form, "forgot");
    busy(form, true);
    try {
      const answer = await api("POST", "/auth/password-reset", { email: $("forgot-email").value.trim() }, { auth: false });
      form.reset();
      setStatus(answer && answer.message ? answer.message : "Check your email for a link.");
    } catch (err) {
      showError(form, "forgot", err);
    } finally {
      busy(form, false);
    }
  }

  function showReset() {
    resetToken = new URLSearchParams(location.search).get("token");
    history.replaceState(null, "", RESET_PATH);
    $("auth").hidden = true;
    $("wallet").hidden = true;
    $("reset").hidden = false;
    if (!resetToken) {
      $("reset-error").textContent = "This link has no reset token. Ask for a new link from the log-in page.";
    }
    $("reset-heading").focus();
  }

  async function onReset(event) {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form, "reset");
    busy(form, true);
    try {
      await api("POST", "/auth/password-reset/confirm", { token: resetToken || "", new_password: $("reset-password").value }, { auth: false });
      resetToken = null;
      form.reset();
      session.clear(); // the API ended every session
      history.replaceState(null, "", "/");
      showSignedOut("Your new password is set. Log in with it.");
    } catch (err) {
      showError(form, "reset", err);
    } finally {
      busy(form, false);
    }
  }

  // -- sign in, register, log out ------------------------------------------------------------------------

  async function logIn(email, password) {
    const tokens = await api("POST", "/auth/token", { email, password }, { auth: false });
    session.store(tokens);
  }

  async function onLogin(event) {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form, "login");
    busy(form, true);
    try {
      await logIn($("login-email").value.trim(), $("login-password").value);
      form.reset();
      setStatus("You are logged in.");
      await showSignedIn();
    } catch (err) {
      showError(form, "login", err);
      setTimeout(() => $("login-password").focus(), 0);
    } finally {
      busy(form, false);
    }
  }

  async function onRegister(event) {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form, "register");
    const email = $("register-email").value.trim();
    const password = $("register-password").value;
    busy(form, true);
    try {
      await api("POST", "/auth/register", { email, password }, { auth: false });
      await logIn(email, password);
      form.reset();
      setStatus("Your account is ready and you are logged in.");
      await showSignedIn();
    } catch (err) {
      showError(form, "register", err);
    } finally {
      busy(form, false);
    }
  }

  async function onLogout() {
    const refresh = session.refresh;
    try {
      if (refresh) await api("POST", "/auth/logout", { refresh });
    } catch (err) {
      // Signed out here whatever the server said; the refresh token expires on its own.
    }
    session.clear();
    $("session-email").textContent = "";
    $("history-rows").replaceChildren();
    $("detail").hidden = true;
    $("withdraw-result").hidden = true;
    showSignedOut("You are logged out.");
  }

  // -- start ---------------------------------------------------------------------------------------------

  async function start() {
    $("login-form").addEventListener("submit", onLogin);
    $("register-form").addEventListener("submit", onRegister);
    $("logout").addEventListener("click", onLogout);
    $("deposit-form").addEventListener("submit", onDeposit);
    $("withdraw-form").addEventListener("submit", onWithdraw);
    $("statement-form").addEventListener("submit", onStatement);
    $("preferences-form").addEventListener("submit", onPreferences);
    $("forgot-form").addEventListener("submit", onForgot);
    $("reset-form").addEventListener("submit", onReset);
    $("balance-refresh").addEventListener("click", loadBalance);
    $("history-refresh").addEventListener("click", () => loadHistory(false));
    $("history-more").addEventListener("click", () => loadHistory(true));
    $("detail-close").addEventListener("click", () => {
      $("detail").hidden = true;
      $("history-heading").focus();
    });
    $("deposit-return-dismiss").addEventListener("click", dismissDepositReturn);
    $("history-heading").tabIndex = -1;

    const today = new Date();
    const monthAgo = new Date(today.getTime() - 30 * 24 * 3600 * 1000);
    $("statement-to").value = today.toISOString().slice(0, 10);
    $("statement-from").value = monthAgo.toISOString().slice(0, 10);

    if (location.pathname === RESET_PATH) {
      showReset();
      document.body.dataset.ready = "true";
      return;
    }

    // Back from the checkout, or reloaded: the refresh token in sessionStorage resumes the session.
    let resumed = false;
    try {
      resumed = await refreshTokens();
    } catch (err) {
      setStatus(err.message);
    }
    if (resumed) {
      await showSignedIn();
    } else {
      const back = DEPOSIT_PATH.test(location.pathname);
      const linked = TRANSACTION_PATH.test(location.pathname) || location.pathname === PREFERENCES_PATH;
      showSignedOut(back ? "Log in to see your deposit." : linked ? "Log in to continue." : "");
    }
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", start);
})();
