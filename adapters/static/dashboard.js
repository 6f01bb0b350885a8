// tradeledger dashboard: REST snapshots, then live updates over /ws (works offline: the charts are our
// chart.js on plotly.js, both served by the app, plotly from the installed package).
//
// API data is read only through val(record, schema, field), which refuses any field that
// /static/contract.json does not declare; tests check that contract against the OpenAPI schema.
// Derived state (portfolio, positions, equity) is always re-read from the read models when a
// message says it changed, so the numbers shown are the server's, never recomputed here.
"use strict";

(() => {
  const KEEP = 50;            // rows kept in the fill and activity lists
  const EQUITY_POINTS = 2000; // points kept in the chart
  const RETRY_MS = 250;       // wait before re-reading a read model that has not caught up yet
  const CANDLES = 500;        // candles of the selected pair kept in its chart
  const CHART_FILLS = 1000;   // fills read at start for the chart's markers

  const state = {
    contract: null,
    complete: 0,   // every message up to this log position has been received: reconnect after it
    current: 0,    // the position of the last message received
    messages: 0,
    connected: false,
    socket: null,
    fills: new Map(), orders: new Map(), signals: new Map(), activity: new Map(),
    equity: [], positions: [], portfolio: null, health: null,
    pairs: new Set(), pair: null, chart: null, chartFills: new Map(), reasons: new Map(), drawPending: false,
    refresh: { running: false, again: false, want: 0 },
  };
  window.dashboard = state; // for debugging and the browser test

  function val(record, schema, field) {
    const fields = state.contract.schemas[schema];
    if (!fields || !(field in fields)) {
      throw new Error(`dashboard reads ${schema}.${field}, which contract.json does not declare`);
    }
    return record[field];
  }

  async function api(path) {
    const response = await fetch(path, { headers: { accept: "application/json" } });
    if (response.status === 404) return null;
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  // -- formatting and DOM ----------------------------------------------------

  const num = (s, digits = 8) => (s === null || s === undefined) ? "–"
    : Number(s).toLocaleString("en-US", { maximumFractionDigits: digits });
  const when = (s) => s ? s.replace("T", " ").replace(/(\.\d+)?Z$/, "") : "–";

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  function table(id, headers, rows) {
    const head = el("tr", {}, ...headers.map((h) => el("th", {}, h)));
    document.getElementById(id).replaceChildren(head, ...rows.map(([attrs, cells]) =>
      el("tr", attrs, ...cells.map((c) => el("td", {}, c)))));
  }

  const badge = (text, cls) => el("span", { class: cls }, text);

  // -- panels ------------------------------------------------------------------

  function renderSummary() {
    const p = state.portfolio;
    const summary = document.getElementById("summary");
    if (!p) { summary.replaceChildren(el("div", { class: "card" }, "no account yet: waiting for the agent")); return; }
    const v = (f) => val(p, "PortfolioView", f);
    const card = (label, value, cls = "") => el("div", { class: "card" },
      el("div", { class: "label" }, label), el("div", { class: `value ${cls}` }, value));
    const sign = (s) => Number(s) >= 0 ? "up" : "down";
    summary.replaceChildren(
      card("equity", `${num(v("equity"))} ${v("quote_currency")}`),
      card("return", `${num(v("return_percent"), 3)} %`, sign(v("return_percent"))),
      card("cash", num(v("cash"))),
      card("gross PnL", num(v("gross_pnl")), sign(v("gross_pnl"))),
      card("fees", num(v("fees"))),
      card("net PnL", num(v("net_pnl")), sign(v("net_pnl"))),
      card("unrealised PnL", num(v("unrealised_pnl")), sign(v("unrealised_pnl"))),
      card("round trips", v("trades_closed")),
    );
    const halted = v("halted");
    const trading = document.getElementById("trading");
    trading.textContent = halted ? `halted by ${v("halted_rule")}: ${v("halted_reason")}` : "trading";
    trading.className = `badge ${halted ? "down" : "up"}`;
  }

  function renderPositions() {
    table("positions", ["symbol", "quantity", "avg price", "last", "unrealised"], state.positions.map((p) => {
      const v = (f) => val(p, "PositionView", f);
      return [{}, [v("symbol"), num(v("quantity")), num(v("average_price")), num(v("last_price")),
        badge(num(v("unrealised_pnl")), Number(v("unrealised_pnl")) >= 0 ? "up" : "down")]];
    }));
  }

  function renderOrders() {
    table("orders", ["placed", "symbol", "side", "quantity", "reason"], [...state.orders.values()].map((o) => {
      const v = (k) => val(o, "OrderView", k);
      return [{ "data-order": v("order_id") }, [when(v("placed_at")), v("symbol"),
        badge(v("side"), v("side") === "buy" ? "up" : "down"), num(v("quantity")), v("reason")]];
    }));
  }

  function renderFills() {
    const at = (f) => val(f, "FillView", "position");
    const fills = [...state.fills.values()].sort((a, b) => at(b) - at(a)).slice(0, KEEP);
    state.fills = new Map(fills.map((f) => [at(f), f]));
    table("fills", ["time", "symbol", "side", "quantity", "price", "fee", "gross PnL"], fills.map((f) => {
      const v = (k) => val(f, "FillView", k);
      return [{ "data-position": v("position") }, [when(v("filled_at")), v("symbol"),
        badge(v("side"), v("side") === "buy" ? "up" : "down"), num(v("quantity")), num(v("price")), num(v("fee")),
        num(v("realised_pnl"))]];
    }));
  }

  function renderSignals() {
    const now = Date.now();
    table("signals", ["symbol", "tf", "prediction", "confidence", "actionable", "model", "candle closed", "fresh"],
      [...state.signals.values()].map((s) => {
        const v = (k) => val(s, "SignalView", k);
        const fresh = Date.parse(v("fresh_until")) > now;
        return [{ "data-position": v("position") }, [v("symbol"), v("timeframe"),
          badge(v("prediction"), { up: "up", down: "down" }[v("prediction")] || "muted"),
          v("confidence").toFixed(2), v("is_actionable") ? "yes" : "no", v("model_name"), when(v("timestamp")),
          badge(fresh ? "fresh" : `stale since ${when(v("fresh_until"))}`, fresh ? "fresh" : "stale")]];
      }));
  }

  function renderHealth() {
    const h = state.health;
    if (!h) return;
    const v = (k) => val(h, "HealthReport", k);
    const agent = v("agent");
    const a = (k) => val(agent, "AgentHealth", k);
    const age = a("heartbeat_age");
    const rows = [
      ["overall", badge(v("status"), v("status"))],
      ["event store", badge(v("store_reachable") ? `reachable, head ${v("head")}` : "unreachable",
        v("store_reachable") ? "up" : "down")],
      ["agent", badge(a("status"), a("status"))],
      ["feed", `${a("feed") ?? "–"} (${a("feed_source") ?? "no feed"}), lag ${(a("feed_lag") ?? 0).toFixed(0)} s, `
        + `${a("reconnects") ?? 0} reconnects`],
      ["last heartbeat", age === null ? "–" : `${age.toFixed(0)} s ago, ${a("candles_processed")} candles`],
      ["open connections", v("open_connections") ?? "–"],
      ...v("projections").map((p) => {
        const q = (k) => val(p, "ProjectionHealth", k);
        return [`projection ${q("name")}`, q("error") ? badge(`stopped: ${q("error")}`, "down")
          : `at ${q("position")}, lag ${q("lag") ?? "?"}`];
      }),
      ...v("reasons").map((r) => ["reason", r]),
    ];
    const body = el("table", {}, ...rows.map(([k, value]) => el("tr", {}, el("th", {}, k), el("td", {}, value))));
    document.getElementById("health").replaceChildren(body);
    renderPosition();
    renderFeed(a("feed"), a("feed_source"));
  }

  // The header badge: where the prices come from (an exchange, SYNTHETIC or the file) and whether it keeps up.
  function renderFeed(feed, source) {
    const badgeEl = document.getElementById("feed");
    badgeEl.textContent = `feed: ${source ?? "none"} ${feed ?? ""}`.trim();
    badgeEl.dataset.state = feed ?? "none";
    badgeEl.dataset.source = source ?? "";
    badgeEl.className = `badge ${feed === "live" ? "up" : "down"}`;
  }

  function renderActivity() {
    const at = (i) => val(i, "ActivityView", "position");
    const items = [...state.activity.values()].sort((a, b) => at(b) - at(a)).slice(0, KEEP);
    state.activity = new Map(items.map((i) => [at(i), i]));
    document.getElementById("activity").replaceChildren(...items.map((i) => {
      const v = (k) => val(i, "ActivityView", k);
      return el("li", { "data-position": v("position") }, el("span", { class: "muted" }, `${when(v("at"))} `), v("text"));
    }));
  }

  function renderEquity() {
    const div = document.getElementById("equity");
    const points = state.equity;
    const quote = state.portfolio ? val(state.portfolio, "PortfolioView", "quote_currency") : "";
    TradeCharts.curves(div, { time: points.map((p) => Date.parse(val(p, "EquityPoint", "time"))),
      equity: points.map((p) => val(p, "EquityPoint", "equity")) }, { theme: "dark", currency: quote });
    div.dataset.points = String(points.length);
  }

  // -- the candle chart of the selected pair, with its fills --------------------

  const pairKey = (symbol, timeframe) => `${symbol} ${timeframe}`;
  const slug = (symbol) => symbol.replace(/\//g, "-");

  function addPair(symbol, timeframe) {
    const key = pairKey(symbol, timeframe);
    if (state.pairs.has(key)) return;
    state.pairs.add(key);
    const select = document.getElementById("pair");
    select.append(el("option", { value: key }, key));
    if (state.pair === null) selectPair(key);
  }

  async function selectPair(key) {
    state.pair = key;
    document.getElementById("pair").value = key;
    const [symbol, timeframe] = key.split(" ");
    // Marks that arrive while the candles are read are kept, and go after them.
    const chart = state.chart = new TradeCharts.LivePair(symbol, timeframe, CANDLES);
    const found = await api(`/api/candles/${slug(symbol)}?timeframe=${encodeURIComponent(timeframe)}&limit=${CANDLES}`);
    if (state.chart !== chart) return; // another pair was chosen meanwhile
    chart.putBefore((found ? val(found, "CandlesView", "candles") : []).map((c) => {
      const v = (f) => val(c, "CandleView", f);
      return [Date.parse(v("open_time")), v("open"), v("high"), v("low"), v("close")];
    }));
    scheduleDraw();
  }

  function putFill(fill) {
    const v = (k) => val(fill, "FillView", k);
    state.chartFills.set(v("position"), { symbol: v("symbol"), time: Date.parse(v("filled_at")), price: v("price"),
      quantity: v("quantity"), side: v("side"), order_id: v("order_id"), position: v("position") });
  }

  // Drawn at most once per turn of the event loop, however many marks and fills arrived.
  function scheduleDraw() {
    if (state.drawPending) return;
    state.drawPending = true;
    setTimeout(() => { state.drawPending = false; drawCandles(); }, 0);
  }

  function drawCandles() {
    if (!state.chart) return;
    const fills = [...state.chartFills.values()]
      .map((f) => Object.assign({ reason: state.reasons.get(f.order_id) || "" }, f));
    const div = document.getElementById("candles");
    TradeCharts.pair(div, state.chart.withFills(fills), { theme: "dark" });
  }

  // -- reading the read models -------------------------------------------------

  async function loadPortfolio() {
    const last = state.equity.at(-1);
    const since = last ? `from=${encodeURIComponent(val(last, "EquityPoint", "time"))}` : "limit=500";
    const [portfolio, positions, equity] = await Promise.all([
      api("/api/portfolio"), api("/api/positions"), api(`/api/equity?${since}`)]);
    state.portfolio = portfolio;
    state.positions = positions;
    // The newest point may have been re-marked by a fill since: points from `from` on replace it.
    const from = equity.length ? val(equity[0], "EquityPoint", "time") : null;
    state.equity = state.equity.filter((p) => val(p, "EquityPoint", "time") < from || from === null)
      .concat(equity).slice(-EQUITY_POINTS);
    renderSummary(); renderPositions(); renderEquity();
    return portfolio ? val(portfolio, "PortfolioView", "position") : 0;
  }

  // Coalesced: one refresh at a time, and one more if messages arrived meanwhile; retried
  // until the portfolio read model has applied the position that announced the change.
  async function refreshPortfolio(position) {
    const r = state.refresh;
    r.want = Math.max(r.want, position);
    if (r.running) { r.again = true; return; }
    r.running = true;
    try {
      do {
        r.again = false;
        const applied = await loadPortfolio();
        if (applied < r.want) {
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          r.again = true;
        }
      } while (r.again);
    } catch (error) {
      console.warn("portfolio refresh failed", error);
    } finally {
      r.running = false;
    }
  }

  async function refreshHealth() {
    state.health = await api("/api/health");
    renderHealth();
  }

  // -- live updates ------------------------------------------------------------

  const handlers = {
    signal(data) {
      state.signals.set(`${val(data, "SignalView", "symbol")} ${val(data, "SignalView", "timeframe")}`, data);
      renderSignals();
    },
    order(data, _position, at) {
      const v = (k) => val(data, "OrderUpdate", k);
      const id = v("order_id");
      if (id) state.reasons.set(id, v("reason"));
      if (v("status") === "open") { // shaped as the OrderView that /api/orders would return
        state.orders.set(id, { order_id: id, symbol: v("symbol"), side: v("side"), quantity: v("quantity"),
          reason: v("reason"), placed_at: at });
      } else if (id) {
        state.orders.delete(id);
      }
      renderOrders();
    },
    fill(data, position) {
      state.fills.set(val(data, "FillView", "position"), data);
      putFill(data); scheduleDraw();
      state.orders.delete(val(data, "FillView", "order_id"));
      renderFills(); renderOrders();
      refreshPortfolio(position);
    },
    mark(data, position) {
      const v = (k) => val(data, "MarkUpdate", k);
      addPair(v("symbol"), v("timeframe"));
      if (state.chart && state.pair === pairKey(v("symbol"), v("timeframe"))) {
        state.chart.put(Date.parse(v("open_time")), v("open"), v("high"), v("low"), v("price"));
        scheduleDraw();
      }
      refreshPortfolio(position);
    },
    trading(_data, position) { refreshPortfolio(position); refreshHealth(); },
    agent() { refreshHealth(); },
    activity(data) { state.activity.set(val(data, "ActivityView", "position"), data); renderActivity(); },
    heartbeat() { refreshHealth(); },
    pong() {},
    subscribed() {},
    error(data) { console.warn("server says:", data.message); },
  };

  function onMessage(message) {
    state.messages += 1;
    if (["heartbeat", "pong", "subscribed", "error"].includes(message.type)) {
      // The server's cursor: everything up to it has been sent.
      state.complete = Math.max(state.complete, message.position);
    } else if (message.position > state.current) {
      // A position's messages arrive together: a newer one means the previous is complete.
      state.complete = Math.max(state.complete, state.current);
      state.current = message.position;
    }
    renderPosition();
    const handler = handlers[message.type];
    if (handler) handler(message.data, message.position, message.at);
  }

  // The log position the page is live at: what the messages brought, or the head health reported if further
  // on (events no message shows, such as client sessions, still move the log).
  function renderPosition() {
    const head = state.health ? val(state.health, "HealthReport", "head") ?? 0 : 0;
    document.getElementById("position").textContent = `position ${Math.max(state.current, state.complete, head)}`;
  }

  function setLink(up, text) {
    state.connected = up;
    const link = document.getElementById("link");
    link.textContent = text;
    link.className = `badge ${up ? "live" : "down"}`;
  }

  let backoff = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = state.socket = new WebSocket(`${scheme}://${location.host}/ws?after=${state.complete}`);
    socket.onopen = () => { backoff = 500; setLink(true, "live"); };
    socket.onmessage = (event) => onMessage(JSON.parse(event.data));
    socket.onclose = () => {
      setLink(false, "reconnecting");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
  }

  async function start() {
    state.contract = await (await fetch("/static/contract.json")).json();
    await refreshHealth();
    // Catch up over the socket from the least advanced read model: replayed messages are
    // keyed (fills and activity by position, orders by id, signals by market), so a
    // message the snapshots already show changes nothing.
    const applied = state.health.projections.map((p) => val(p, "ProjectionHealth", "position"));
    state.complete = applied.length ? Math.min(...applied) : 0;
    const [orders, fills, signals, activity, placed] = await Promise.all([
      api("/api/orders?status=open"), api(`/api/fills?limit=${CHART_FILLS}`), api("/api/signals"),
      api(`/api/activity?limit=${KEEP}`), api(`/api/orders?limit=${CHART_FILLS}`), loadPortfolio()]);
    for (const o of orders) state.orders.set(val(o, "OrderView", "order_id"), o);
    for (const o of placed) state.reasons.set(val(o, "OrderView", "order_id"), val(o, "OrderView", "reason"));
    for (const f of fills) { putFill(f); state.fills.set(val(f, "FillView", "position"), f); }
    for (const s of signals) addPair(val(s, "SignalView", "symbol"), val(s, "SignalView", "timeframe"));
    document.getElementById("pair").onchange = (event) => selectPair(event.target.value);
    for (const s of signals) handlers.signal(s);
    for (const a of activity) state.activity.set(val(a, "ActivityView", "position"), a);
    renderOrders(); renderFills(); renderActivity();
    connect();
    setInterval(renderSignals, 1000); // freshness changes with the clock, not only with messages
  }

  start().catch((error) => {
    console.error(error);
    document.getElementById("link").textContent = `error: ${error.message}`;
  });
})();
