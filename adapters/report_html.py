"""The HTML report: one self-contained offline document with candle charts of the trades, curves and metrics.

plotly.js comes from the installed `plotly` package (its bundled
`package_data/plotly.min.js`, about 4.8 MB; the Python plotting API is never
imported) and is inlined with our `static/chart.js`, the script the dashboard
draws with too. The data is one embedded JSON document, columnar (one array
per field, times in epoch ms): 100,000 candles cost about 58 bytes each.
The metrics and trade tables are rendered from the structs' own fields
(`msgspec.structs.fields`), so a field added to the metrics shows up without
a change here. Recorded strings are HTML-escaped; `</` is escaped inside the
scripts. `Report` is `adapters/services/metrics.py`'s (docs/reports.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from tradeledger.adapters.statement_html import section, table, text

if TYPE_CHECKING:  # the dashboard's route serves plotly.js from here: it need not import the metrics
    from tradeledger.adapters.services.metrics import Report
    from tradeledger.projections.models_view import ModelsView

STATIC = Path(__file__).resolve().parent / "static"
DECIMALS = 4  # places a float metric is shown with; money (Decimal) is shown in full
CSS = """
body { font: 13px/1.45 system-ui, sans-serif; color: #111; margin: 24px auto; max-width: 1200px; padding: 0 12px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 16px; border-bottom: 1px solid #bbb; margin-top: 28px; }
h3 { font-size: 14px; margin: 16px 0 4px; }
table { border-collapse: collapse; margin: 6px 0; } td, th { padding: 2px 10px 2px 4px; text-align: left; }
th { background: #eee; } tr:nth-child(even) td { background: #f7f7f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } td.num, td.time { white-space: nowrap; }
.chart { width: 100%; height: 460px; } .curves { height: 420px; } .muted { color: #666; }
"""
_encode = msgspec.json.Encoder(decimal_format="number").encode


@cache
def plotly_js() -> str:
    return (files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


def inline(script: str) -> str:
    return script.replace("</", "<\\/")


def render(report: Report) -> str:
    """`report` as one HTML document that opens with no network."""
    pairs = chart_pairs(report)
    data = {"pairs": pairs, "currency": report.metrics.quote_currency,
            "curves": {"time": [epoch_ms(p.time) for p in report.equity],
                       "equity": [p.equity for p in report.equity],
                       "drawdown_percent": [p.drawdown_percent for p in report.equity]}}
    charts = "\n".join(f'<div id="pair-{i}" class="chart" data-symbol="{escape(p["symbol"])}"></div>'
                       for i, p in enumerate(pairs)) or '<p class="muted">no candles in the span</p>'
    parts = [
        f"<h1>{escape(report.title)}</h1>",
        '<p class="muted">Drawn from the event log; this file needs no network. Hover a marker for the fill\'s '
        "price, quantity and reason; drag to zoom, double-click to reset.</p>",
        section("Candles and fills", charts),
        section("Equity and drawdown", '<div id="curves" class="chart curves"></div>'),
        section("Metrics", metrics_tables(report.metrics)),
        section("Trades", struct_table("trades", report.trades)),
    ]
    if report.models is not None:
        parts.insert(-1, section("Models", models_table(report.models)))
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(report.title)}</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(parts)
            + f'\n<script type="application/json" id="report-data">{inline(_encode(data).decode())}</script>'
            + f"\n<script>{inline(plotly_js())}</script>\n<script>{inline((STATIC / 'chart.js').read_text())}</script>"
            + f"\n<script>{DRAW}</script>\n</body></html>\n")


DRAW = """
const report = JSON.parse(document.getElementById("report-data").textContent);
report.pairs.forEach((pair, i) => TradeCharts.pair(document.getElementById(`pair-${i}`), pair));
TradeCharts.curves(document.getElementById("curves"), report.curves, { currency: report.currency });
"""


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def chart_pairs(report: Report) -> list[dict[str, Any]]:
    """Per symbol its candles and fills, columnar, in symbol order."""
    pairs = []
    for symbol in sorted(report.candles):
        candles = report.candles[symbol]
        mine = [f for f in report.fills if f.symbol == symbol]
        pairs.append({
            "symbol": symbol, "timeframe": "", "time": [epoch_ms(c.time) for c in candles],
            **{field: [getattr(c, field) for c in candles] for field in ("open", "high", "low", "close")},
            # Prices are plotted (JSON numbers); quantities are only read, so their exact text is kept.
            "fills": {"time": [epoch_ms(f.time) for f in mine], "price": [f.price for f in mine],
                      "quantity": [text(f.quantity) for f in mine], "side": [f.side for f in mine],
                      "reason": [f.reason for f in mine], "position": [f.position for f in mine]},
        })
    return pairs


def metrics_tables(metrics: msgspec.Struct) -> str:
    """The scalar figures as one table (a nested struct's fields as `name.field`), each list as a table of its own."""
    figures: list[tuple[str, Any]] = []
    lists: list[str] = []
    for field in msgspec.structs.fields(metrics):
        value = getattr(metrics, field.name)
        if isinstance(value, msgspec.Struct):
            figures += [(f"{field.name} {f.name}", getattr(value, f.name)) for f in msgspec.structs.fields(value)]
        elif isinstance(value, list):
            lists.append(f"<h3>{escape(label(field.name))}</h3>" + struct_table(f"metrics-{field.name}", value))
        else:
            figures.append((field.name, value))
    rows = "".join(f'<tr><th>{escape(label(name))}</th><td data-metric="{escape(name)}">'
                   f"{escape(text(shown(name, value)))}</td></tr>" for name, value in figures)
    return f'<table id="metrics">{rows}</table>' + "".join(lists)


MODEL_COLUMNS = ("model", "role", "calls", "hits", "hit_rate", "brier", "window_hit_rate", "window_brier",
                 "trades", "wins", "pnl")


def models_table(models: ModelsView) -> str:
    """Which model earns its place: each one's calls scored at the next close, and the trades it voted for
    (docs/models.md); calibration stays in the API, a table of ten buckets per model would drown this one."""
    return table("models", [label(n) for n in MODEL_COLUMNS],
                 [[shown(n, getattr(m, n)) for n in MODEL_COLUMNS] for m in models.models])


def struct_table(table_id: str, rows: list[Any]) -> str:
    """Rows of one struct type, a column per field (scalars shown as `shown` does)."""
    if not rows:
        return table(table_id, [], [])
    names = [f.name for f in msgspec.structs.fields(rows[0])]
    return table(table_id, [label(n) for n in names],
                 [[shown(n, getattr(row, n)) for n in names] for row in rows])


def label(name: str) -> str:
    return name.replace("_", " ").replace(" percent", " %")


def shown(name: str, value: Any) -> Any:
    """A float rounded for reading (a duration in seconds as h:mm:ss), None as a dash, anything else as is."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if name.endswith("_seconds"):
            return str(timedelta(seconds=round(value)))
        return f"{value:,.{DECIMALS}f}"
    return value
