"""Every command: its name, its one-line help and the module that declares it.

`tradeledger --help` needs only this table, and one command's parser only its own module, so a command
imports what it uses and nothing of the others (pip keeps its commands the same way). The module declares
the command's options and handler with `cliargs.command`; the help is said here, once.
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    module: str  # in tradeledger.adapters
    help: str


CATALOGUE: dict[str, Entry] = {
    "run": Entry("cli_processes", "embedded: projections, the paced agent and the API/dashboard in one process until "
                                  "SIGINT/SIGTERM"),
    "agent": Entry("cli_processes", "run the agent alone on the paced feed until SIGINT/SIGTERM (scale-out process)"),
    "serve": Entry("cli_processes", "the API and dashboard alone against any store, following the log itself "
                                    "(scale-out)"),
    "project": Entry("cli_processes", "run the projection runner alone until SIGINT/SIGTERM, printing progress and "
                                      "lag (scale-out)"),
    "telegram": Entry("cli_processes", "the Telegram bot alone until SIGINT/SIGTERM: commands, the alert outbox and "
                                       "its delivery (scale-out; a runner such as `project` keeps the read models it "
                                       "reads current)"),
    "backtest": Entry("cli_backtest", "run the agent over a candle file as fast as it can, recording everything; "
                                      "print a summary"),
    "report": Entry("cli_report", "the metrics traders compare (returns, drawdown, ratios, trade statistics, tables "
                                  "by pair, exit reason and period) for any store's history, or the span between "
                                  "--from and --to (docs/metrics.md)"),
    "download": Entry("cli_download", "fetch an exchange's closed candles through ccxt into one Parquet file per "
                                      "symbol and timeframe (DIR/ETH_BTC-5m.parquet, what backtest --data reads); a "
                                      "second run fetches only what is missing"),
    "health": Entry("cli_health", "agent, projections, store and connections; exit 0 healthy, 1 degraded, "
                                  "2 unhealthy"),
    "events": Entry("cli_store", "the audit log, paged"),
    "replay": Entry("cli_readmodels", "the portfolio as it was at a log position, a business time or a wall-clock "
                                      "time, folded afresh from the log"),
    "rebuild": Entry("cli_readmodels", "rebuild the named read models (all when none named) from the log into new "
                                       "tables, swapped in only when every one succeeded"),
    "db upgrade": Entry("cli_store", "alembic upgrade head (also done on every start)"),
    "verify": Entry("cli_log", "check hash chains, ledger invariants and read models against a fresh fold; exit 0 "
                               "only if all hold"),
    "reproduce": Entry("cli_reproduce", "re-run every recorded decision from the recorded candles and compare; exit 1 "
                                        "on divergence"),
    "seal": Entry("cli_log", "bring the Merkle tree to the head, sign a checkpoint with audit.signing_key and record "
                             "it"),
    "prove": Entry("cli_log", "an inclusion proof of the event at a position (or, with --from-checkpoint, a "
                              "consistency proof) against a checkpoint's tree"),
    "keys new": Entry("cli_log", "make an Ed25519 key pair for signing checkpoints: FILE (private, mode 0600) and "
                                 "FILE.pub"),
    "explain": Entry("cli_books", "the whole trail of one order: candle, signal, risk checks, sizing, fill, journal, "
                                  "round trip"),
    "journal": Entry("cli_books", "the journal lines the accounts posted, with debits and credits, in log order"),
    "trial-balance": Entry("cli_books", "every ledger account's balance at a cut of the log (the head by default) and "
                                        "their total, which is zero"),
    "export": Entry("cli_files", "write the event log and every table folded from it (orders, fills, trades, "
                                 "signals, every signal, equity, candles, journal lines, rejections, halts, the "
                                 "account) as Parquet or CSV files"),
    "statement": Entry("cli_files", "an auditor's statement of the account as one self-contained HTML file (--pdf: "
                                    "and PDF); exit 1 when verify or reproduce fails (the statement is written and "
                                    "says so)"),
}
