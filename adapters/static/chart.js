// tradeledger charts on plotly.js: a candlestick per pair with its fills marked, equity and drawdown.
//
// One script for the HTML report (inlined there with plotly.min.js) and the dashboard (served at
// /static/chart.js, plotly at /static/plotly.min.js from the installed plotly package): no CDN.
// Series are columnar, one array per field (times in epoch ms, UTC), as adapters/report_html.py
// embeds them and dashboard.js builds them from the API:
//   pair   = {symbol, timeframe, time[], open[], high[], low[], close[],
//             fills: {time[], price[], quantity[], side[], reason[], position[]}}
//   curves = {time[], equity[], drawdown_percent[]}
// Prices may be numbers or decimal strings. A long series is drawn with runs of candles merged so that
// at most MAX_CANDLES are on screen (SVG cost grows with every candle); zooming re-merges the visible
// span, down to single candles. Markers are always every fill at its own time and price.
"use strict";

window.TradeCharts = (() => {
  const MAX_CANDLES = 1500;
  const THEMES = {
    light: { paper: "#ffffff", plot: "#ffffff", text: "#222222", grid: "#e4e4e4", up: "#1a9850", down: "#d73027",
      line: "#2166ac", buy: "#2166ac", sell: "#e08214" },
    dark: { paper: "#171e24", plot: "#171e24", text: "#d8e0e6", grid: "#253038", up: "#3fb96f", down: "#e5534b",
      line: "#4aa3df", buy: "#4aa3df", sell: "#f0a23b" },
  };
  const CONFIG = { displaylogo: false, responsive: true };

  const numbers = (values) => values.map(Number);
  const utc = (text) => Date.parse(String(text).replace(" ", "T") + (/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? "" : "Z"));

  function baseLayout(theme, extra) {
    const axis = { gridcolor: theme.grid, zerolinecolor: theme.grid, color: theme.text };
    return Object.assign({
      paper_bgcolor: theme.paper, plot_bgcolor: theme.plot, font: { color: theme.text, size: 11 },
      margin: { l: 64, r: 16, t: 28, b: 40 }, showlegend: false, hovermode: "closest", uirevision: "keep",
      xaxis: Object.assign({ type: "date", rangeslider: { visible: false }, title: { text: "time (UTC)" } }, axis),
      yaxis: Object.assign({}, axis),
    }, extra);
  }

  // First index with time >= t (time is sorted ascending).
  function lowerBound(time, t) {
    let lo = 0, hi = time.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (time[mid] < t) lo = mid + 1; else hi = mid; }
    return lo;
  }

  // The candles in [lo, hi), runs of k merged (first open, highest high, lowest low, last close).
  function merged(series, lo, hi) {
    const k = Math.max(1, Math.ceil((hi - lo) / MAX_CANDLES));
    const out = { x: [], open: [], high: [], low: [], close: [], k };
    for (let i = lo; i < hi; i += k) {
      const j = Math.min(i + k, hi);
      let high = -Infinity, low = Infinity;
      for (let m = i; m < j; m += 1) {
        if (series.high[m] > high) high = series.high[m];
        if (series.low[m] < low) low = series.low[m];
      }
      out.x.push(series.time[i]); out.open.push(series.open[i]); out.high.push(high); out.low.push(low);
      out.close.push(series.close[j - 1]);
    }
    return out;
  }

  function series(pair) {
    const f = pair.fills;
    return {
      time: numbers(pair.time), open: numbers(pair.open), high: numbers(pair.high), low: numbers(pair.low),
      close: numbers(pair.close),
      fills: { time: numbers(f.time), price: numbers(f.price), quantity: f.quantity.map(String), side: f.side,
        reason: f.reason, position: f.position },
    };
  }

  function traces(s, range, theme, title) {
    const [lo, hi] = range ? [lowerBound(s.time, range[0]), lowerBound(s.time, range[1] + 1)] : [0, s.time.length];
    // One candle either side of the view, so panning a little shows no empty edge before the re-merge.
    const c = merged(s, Math.max(0, lo - 1), Math.min(s.time.length, hi + 1));
    const f = s.fills;
    const buy = f.side.map((side) => side === "buy");
    return [{
      type: "candlestick", name: c.k > 1 ? `${title} (${c.k} candles per bar)` : title, meta: "candles",
      x: c.x, open: c.open, high: c.high, low: c.low, close: c.close,
      increasing: { line: { color: theme.up, width: 1 } }, decreasing: { line: { color: theme.down, width: 1 } },
    }, {
      type: "scatter", mode: "markers", name: "fills", meta: "fills", x: f.time, y: f.price,
      customdata: f.time.map((_, i) => [f.side[i], f.quantity[i], f.reason[i] || "–", f.position[i]]),
      hovertemplate: "%{customdata[0]} %{customdata[1]} at %{y}<br>%{x|%Y-%m-%d %H:%M:%S} UTC"
        + "<br>reason: %{customdata[2]}<br>log position %{customdata[3]}<extra></extra>",
      marker: { size: 11, symbol: buy.map((b) => (b ? "triangle-up" : "triangle-down")),
        color: buy.map((b) => (b ? theme.buy : theme.sell)), line: { width: 1, color: theme.text } },
    }];
  }

  function visibleRange(event) {
    if (!event || event["xaxis.autorange"]) return null;
    const start = event["xaxis.range[0]"] ?? (event["xaxis.range"] || [])[0];
    const end = event["xaxis.range[1]"] ?? (event["xaxis.range"] || [])[1];
    return start === undefined || end === undefined ? undefined : [utc(start), utc(end)];
  }

  // Draws (or redraws, keeping the user's zoom) the candlestick chart of one pair with its fills.
  function pair(div, data, options = {}) {
    const theme = THEMES[options.theme || "light"];
    const title = `${data.symbol} ${data.timeframe}`.trim();
    const state = div.tradeCharts || (div.tradeCharts = { range: null });
    state.series = series(data);
    const draw = () => Plotly.react(div, traces(state.series, state.range, theme, title),
      baseLayout(theme, { title: { text: title, x: 0.01, font: { size: 13 } },
        yaxis: { gridcolor: theme.grid, color: theme.text, title: { text: "price" } } }), CONFIG);
    const drawn = draw();
    if (!state.listening) {
      state.listening = true;
      div.on("plotly_relayout", (event) => {
        const range = visibleRange(event);
        if (range === undefined) return; // not a change of the time axis
        state.range = range;
        draw();
      });
    }
    return drawn;
  }

  // Equity (top) and, when given, drawdown from the running peak (bottom) on one time axis.
  function curves(div, data, options = {}) {
    const theme = THEMES[options.theme || "light"];
    const time = numbers(data.time);
    const axis = { gridcolor: theme.grid, zerolinecolor: theme.grid, color: theme.text };
    const drawdown = Array.isArray(data.drawdown_percent);
    const lines = [{ type: "scatter", mode: "lines", name: "equity", meta: "equity", x: time, y: numbers(data.equity),
      line: { color: theme.line, width: 1.5 },
      hovertemplate: "%{x|%Y-%m-%d %H:%M} UTC<br>equity %{y}<extra></extra>" }];
    if (drawdown) {
      lines.push({ type: "scatter", mode: "lines", name: "drawdown", meta: "drawdown", x: time, yaxis: "y2",
        y: data.drawdown_percent.map((d) => -Number(d)), fill: "tozeroy", line: { color: theme.down, width: 1 },
        hovertemplate: "%{x|%Y-%m-%d %H:%M} UTC<br>drawdown %{y:.3f} %<extra></extra>" });
    }
    const equityAxis = { domain: drawdown ? [0.38, 1] : [0, 1],
      title: { text: options.currency ? `equity (${options.currency})` : "equity" } };
    const layout = baseLayout(theme, {
      xaxis: Object.assign({ type: "date", anchor: drawdown ? "y2" : "y", title: { text: "time (UTC)" } }, axis),
      yaxis: Object.assign(equityAxis, axis),
    });
    if (drawdown) layout.yaxis2 = Object.assign({ domain: [0, 0.3], title: { text: "drawdown %" } }, axis);
    return Plotly.react(div, lines, layout, CONFIG);
  }

  // A pair's series as it grows live (the dashboard): at most `keep` candles, by open time.
  class LivePair {
    constructor(symbol, timeframe, keep) {
      Object.assign(this, { symbol, timeframe, keep, time: [], open: [], high: [], low: [], close: [] });
    }

    // A candle already shown is replaced (a replay after a reconnect), an older one ignored, a newer one appended.
    put(time, open, high, low, close) {
      const last = this.time.length - 1;
      if (last >= 0 && time < this.time[last]) return;
      if (last >= 0 && time === this.time[last]) for (const k of FIELDS) this[k].pop();
      [time, open, high, low, close].forEach((value, i) => this[FIELDS[i]].push(value));
      if (this.time.length > this.keep) for (const k of FIELDS) this[k].shift();
    }

    // Candles read after live ones were put go first: the live ones are put again after them.
    putBefore(rows) {
      const live = FIELDS.map((k) => this[k].splice(0));
      for (const row of rows) this.put(...row);
      live[0].forEach((_, i) => this.put(...live.map((column) => column[i])));
    }

    // What pair() draws, with those of `fills` ({symbol, time, price, quantity, side, reason, position}) that are
    // of this symbol and not older than the first candle shown, in log order.
    withFills(fills) {
      const first = this.time.length ? this.time[0] : Infinity;
      const mine = fills.filter((f) => f.symbol === this.symbol && f.time >= first)
        .sort((a, b) => a.position - b.position);
      const column = (k) => mine.map((f) => f[k]);
      return { symbol: this.symbol, timeframe: this.timeframe, time: this.time, open: this.open, high: this.high,
        low: this.low, close: this.close, fills: Object.fromEntries(FILL_FIELDS.map((k) => [k, column(k)])) };
    }
  }
  const FIELDS = ["time", "open", "high", "low", "close"];
  const FILL_FIELDS = ["time", "price", "quantity", "side", "reason", "position"];

  return { pair, curves, LivePair, THEMES, MAX_CANDLES };
})();
