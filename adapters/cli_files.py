"""The commands that write files from the log: `export` and `statement` (registered on import by `adapters.cli`)."""

from __future__ import annotations

import argparse

from tradeledger.adapters.cliargs import command, emit, fail, new_file, option, out_directory, redacted_url, utc_time
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.services import readmodels, statement


@command("export",
         option("--out", type=out_directory, required=True, metavar="DIR",
                help="directory for the files (created if new; its parent must exist)"),
         option("--format", choices=("parquet", "csv"), default="parquet", help="file format (default parquet)"),
         reads="log")
def export_command(args: argparse.Namespace, container: Composition) -> int:
    from tradeledger.adapters.evidence import write_evidence
    from tradeledger.adapters.export import export  # polars is slow to import, and only this command needs it

    readmodels.bulk_gc()
    # Read-only and from the log alone: every table is folded afresh up to the head at the start.
    written = export(container.feed, args.out, args.format, until=container.feed.head(),
                     evidence=lambda out, _fmt, _files: write_evidence(container.feed, container.engine, out))
    emit(args, {name: str(path) for name, path in written.items()},
         "\n".join(f"{name}: {path}" for name, path in written.items()))
    return 0


@command("statement",
         option("--out", type=new_file, required=True, metavar="FILE.html",
                help="the HTML file to write (in a directory that exists)"),
         option("--as-of", type=utc_time, metavar="T", help="cut the history at business time T, as replay --as-of"),
         option("--account", metavar="NAME", help="the account (default: trading.account)"),
         option("--pdf", action="store_true", help="also print FILE.pdf with Debian's headless chromium"),
         reads="log")
def statement_command(args: argparse.Namespace, container: Composition) -> int:
    from tradeledger.adapters import pdf
    from tradeledger.adapters.statement_html import render

    try:
        browser = pdf.chromium() if args.pdf else None
        readmodels.bulk_gc()
        drawn = statement.statement(
            container.feed, container.recorded_trader_factory(), as_of=args.as_of, now=container.clock(),
            account=args.account or container.settings.trading.account, database=redacted_url(container.settings),
            store_id=statement.recorded_store_id(container.engine))
        args.out.write_text(render(drawn), encoding="utf-8")
        written = {"html": str(args.out)}
        if browser is not None:
            written["pdf"] = str(args.out.with_suffix(".pdf"))
            pdf.print_pdf(args.out, args.out.with_suffix(".pdf"), browser)
    except (pdf.PdfUnavailable, statement.NoAccount) as error:
        return fail("statement", str(error))
    ok = drawn.verify.ok and drawn.reproduce.ok
    emit(args, {**written, "verify": drawn.verify.ok, "reproduce": drawn.reproduce.ok},
         "\n".join([*(f"{kind}: {path}" for kind, path in written.items()),
                    f"verify: {drawn.verify.summary}", f"reproduce: {drawn.reproduce.summary}"]))
    return 0 if ok else 1
