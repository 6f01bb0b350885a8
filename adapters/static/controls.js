// tradeledger dashboard controls: halt/resume, stop/start entry, force exit (per open position or all) and
// force enter, through the token-protected POST /api/control/* endpoints (docs/api.md).
//
// The api.token is asked once per browser session: typed into the panel's form, kept in sessionStorage
// (gone when the tab closes) and sent as a bearer token; a 401 forgets it and asks again. Responses are
// read only through the contract (contract.json ControlResult), like dashboard.js reads its data.
"use strict";

(() => {
  const TOKEN_KEY = "tradeledger.api.token";
  const panel = document.getElementById("controls");
  const result = document.getElementById("control-result");
  const form = document.getElementById("token-form");
  let waiting = null; // the action to run once the token is given

  function read(record, schema, field) {
    const fields = window.dashboard.contract.schemas[schema];
    if (!fields || !(field in fields)) {
      throw new Error(`controls read ${schema}.${field}, which contract.json does not declare`);
    }
    return record[field];
  }

  function show(text, ok) {
    result.textContent = text;
    result.className = ok ? "up" : "down";
  }

  async function post(path, body) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      waiting = () => post(path, body);
      form.hidden = false;
      form.querySelector("input").focus();
      show("the API token is needed (asked once per browser session)", false);
      return;
    }
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      return post(path, body);
    }
    if (!response.ok) {
      show(`refused (HTTP ${response.status}): ${answer.detail || response.statusText}`, false);
      return;
    }
    const status = read(answer, "ControlResult", "status");
    const symbol = read(answer, "ControlResult", "symbol");
    result.dataset.commandId = read(answer, "ControlResult", "command_id");
    show(`${read(answer, "ControlResult", "action")}${symbol ? " " + symbol : ""}: ${status} ` +
         `(log position ${read(answer, "ControlResult", "position")})`, true);
  }

  function reason(what) {
    return document.getElementById("control-reason").value.trim() || `${what} from the dashboard`;
  }

  const actions = {
    halt: () => post("/api/control/halt", { reason: reason("halt") }),
    resume: () => post("/api/control/resume", { reason: reason("resume") }),
    "stop-entry": () => post("/api/control/stop-entry", { reason: reason("stop entry") }),
    "start-entry": () => post("/api/control/start-entry", { reason: reason("start entry") }),
    "force-exit": (symbol) => post("/api/control/force-exit", { symbol, reason: reason("force exit") }),
    "force-enter": () => post("/api/control/force-enter", {
      symbol: document.getElementById("force-symbol").value.trim(), reason: reason("force enter") }),
  };

  panel.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) actions[button.dataset.action](button.dataset.symbol);
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = form.querySelector("input");
    if (!input.value) return;
    sessionStorage.setItem(TOKEN_KEY, input.value);
    input.value = "";
    form.hidden = true;
    const next = waiting;
    waiting = null;
    if (next) next();
  });

  // One force-exit button per open position, and the entry switch, redrawn whenever dashboard.js redraws
  // its positions table (it re-reads the portfolio with them).
  function renderExits() {
    const portfolio = window.dashboard.portfolio;
    const stopped = portfolio ? read(portfolio, "PortfolioView", "entries_stopped") : false;
    document.getElementById("entries").textContent = stopped ? "entries: STOPPED (exits go on)" : "entries: allowed";
    const symbols = (window.dashboard.positions || []).map((p) => read(p, "PositionView", "symbol"));
    document.getElementById("position-exits").replaceChildren(...symbols.map((symbol) => {
      const button = document.createElement("button");
      Object.assign(button.dataset, { action: "force-exit", symbol });
      button.textContent = `force exit ${symbol}`;
      return button;
    }));
  }

  new MutationObserver(renderExits).observe(document.getElementById("positions"), { childList: true });
})();
