// tradeledger dashboard: the model scoreboard panel (GET /api/models; docs/models.md has every formula).
//
// Reads API data only through the fields /static/contract.json declares, as dashboard.js does. The
// scoreboard changes once per candle at most; it is re-read every REFRESH_MS and redrawn only when the
// read model has moved (the server answers an unchanged position from its cache).
"use strict";

(() => {
  const REFRESH_MS = 2000;
  let contract = null;
  let shown = -1;

  function val(record, schema, field) {
    const fields = contract.schemas[schema];
    if (!fields || !(field in fields)) {
      throw new Error(`models panel reads ${schema}.${field}, which contract.json does not declare`);
    }
    return record[field];
  }

  const percent = (x) => x === null ? "–" : `${(100 * x).toFixed(1)} %`;
  const score = (x) => x === null ? "–" : x.toFixed(3);

  function cell(content, attrs = {}) {
    const td = document.createElement("td");
    for (const [key, value] of Object.entries(attrs)) td.setAttribute(key, value);
    td.append(content);
    return td;
  }

  // The calibration as "confidence → observed" for the buckets that hold calls.
  function calibration(buckets) {
    return buckets.filter((b) => val(b, "CalibrationBucket", "count") > 0).map((b) => {
      const c = (k) => val(b, "CalibrationBucket", k);
      return `${c("mean_confidence").toFixed(2)}→${c("observed").toFixed(2)} (${c("count")})`;
    }).join(", ") || "–";
  }

  function render(board) {
    const v = (k) => val(board, "ModelsView", k);
    const recent = v("window");
    const head = document.createElement("tr");
    for (const h of ["model", "calls", "hit rate", "Brier", `last ${recent}: hit rate`, "Brier", "trades (won)",
      "PnL", "calibration"]) {
      const th = document.createElement("th");
      th.textContent = h;
      head.append(th);
    }
    const rows = v("models").map((m) => {
      const f = (k) => val(m, "ModelView", k);
      const tr = document.createElement("tr");
      tr.dataset.model = f("model");
      const pnl = Number(f("pnl"));
      tr.append(cell(`${f("model")}${f("role") === "predictor" ? " (predictor)" : ""}`),
        cell(`${f("calls")} (+${f("holds")} hold)`), cell(percent(f("hit_rate")), { "data-field": "hit_rate" }),
        cell(score(f("brier")), { "data-field": "brier" }), cell(percent(f("window_hit_rate"))),
        cell(score(f("window_brier"))), cell(`${f("trades")} (${f("wins")})`),
        cell(pnl.toLocaleString("en-US", { maximumFractionDigits: 8 }), { class: pnl >= 0 ? "up" : "down" }),
        cell(calibration(f("calibration")), { class: "muted" }));
      return tr;
    });
    const table = document.getElementById("models");
    table.replaceChildren(head, ...rows);
    table.dataset.position = String(v("position"));
  }

  async function refresh() {
    try {
      const response = await fetch("/api/models", { headers: { accept: "application/json" } });
      if (!response.ok) throw new Error(`/api/models: HTTP ${response.status}`);
      const board = await response.json();
      if (val(board, "ModelsView", "position") !== shown) {
        render(board);
        shown = val(board, "ModelsView", "position");
      }
    } catch (error) {
      console.warn("models refresh failed", error);
    }
  }

  async function start() {
    contract = await (await fetch("/static/contract.json")).json();
    await refresh();
    setInterval(refresh, REFRESH_MS);
  }

  start().catch((error) => console.error(error));
})();
