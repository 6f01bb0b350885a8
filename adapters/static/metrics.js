// tradeledger dashboard: the metrics panel (GET /api/metrics; docs/metrics.md has every formula).
//
// Reads API data only through the fields /static/contract.json declares, as dashboard.js does. The
// figures change only when the portfolio read model moves, so they are re-read at most every
// REFRESH_MS and only then; the panel stays hidden on a server without the endpoint (404).
"use strict";

(() => {
  const REFRESH_MS = 3000;
  const FIGURES = [["return %", "return_percent"], ["CAGR %", "cagr_percent"], ["Sharpe", "sharpe"],
    ["Sortino", "sortino"], ["Calmar", "calmar"], ["profit factor", "profit_factor"],
    ["expectancy %", "expectancy_percent"], ["SQN", "sqn"], ["win rate %", "win_rate_percent"], ["trades", "trades"],
    ["exposure %", "exposure_percent"], ["buy and hold %", "buy_and_hold_percent"], ["fees", "fees"]];
  let shownAt = null; // the portfolio position the panel was read at

  function val(record, schema, field) {
    const fields = window.dashboard.contract.schemas[schema];
    if (!fields || !(field in fields)) {
      throw new Error(`metrics panel reads ${schema}.${field}, which contract.json does not declare`);
    }
    return record[field];
  }

  const shown = (x) => x === null || x === undefined ? "–"
    : Number(x).toLocaleString("en-US", { maximumFractionDigits: 4 });

  function row(label, key, value) {
    const tr = document.createElement("tr");
    tr.dataset.metric = key;
    for (const text of [label, shown(value)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }

  function render(metrics) {
    const m = (k) => val(metrics, "Metrics", k);
    document.getElementById("metrics").replaceChildren(
      ...FIGURES.map(([label, field]) => row(label, field, m(field))),
      row("max drawdown %", "max_drawdown", val(m("max_drawdown"), "Drawdown", "percent")));
  }

  async function refresh() {
    const d = window.dashboard;
    const at = d && d.contract && d.portfolio ? d.portfolio.position : null;
    if (at === null || at === shownAt) return;
    const response = await fetch("/api/metrics", { headers: { accept: "application/json" } });
    const panel = document.getElementById("metrics-panel");
    if (response.status === 404) { panel.hidden = true; return; } // no such endpoint, or no account yet
    if (!response.ok) throw new Error(`/api/metrics: HTTP ${response.status}`);
    render(await response.json());
    panel.hidden = false;
    shownAt = at;
  }

  function loop() {
    refresh().catch((error) => console.warn("metrics refresh failed", error))
      .finally(() => setTimeout(loop, REFRESH_MS));
  }
  loop();
})();
