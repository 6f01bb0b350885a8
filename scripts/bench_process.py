"""What the user waits for: the whole `tradeledger backtest` process, from the shell prompt to the summary.

The real ETH/BTC 5m file is repeated (shifted in time) to --candles candles and written once to a CSV
outside the repository. Each run is a fresh process on a fresh SQLite store; its wall time and its own
peak RSS (`os.wait4`'s rusage of that child) are taken; and `import` is the time a fresh process takes to
import the CLI (minus a bare interpreter's start), so the phases show: import, and the rest (load, loop,
summary; `bench_backtest.py` has the loop alone). With `--before REV` the same runs alternate with the CLI
of an earlier commit (a git worktree), so both sides are measured in one run. Medians; the ratios last.

    .venv/bin/python scripts/bench_process.py [--candles 103680] [--repeat 3] [--predictor sma_cross ensemble]
                                              [--before REV]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from bench_compare import side_environment  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "candles" / "ETH_BTC-5m.csv"


def repeated_file(count: int, folder: Path) -> Path:
    """The base file's rows repeated, each copy shifted by the base's whole span, cut to `count` rows."""
    header, *rows = DATA.read_text().splitlines()
    times = [datetime.fromisoformat(row.split(",", 1)[0]) for row in rows]
    span = times[-1] - times[0] + (times[1] - times[0])
    out = folder / "ETH_BTC-5m.csv"  # the name tells the CLI the symbol and timeframe
    lines = [header]
    for copy in range(count // len(rows) + 1):
        lines.extend(f"{(t + span * copy).strftime('%Y-%m-%dT%H:%M:%SZ')},{row.split(',', 1)[1]}"
                     for t, row in zip(times, rows))
    out.write_text("\n".join(lines[: count + 1]) + "\n")
    return out


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process; it must succeed."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{child.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024


def one_round(side: Path, data: Path, predictor: str, scratch: Path) -> dict[str, float]:
    env = side_environment(side)
    store = scratch / f"{side.name}-{predictor}.sqlite"
    store.unlink(missing_ok=True)
    bare, _ = timed([sys.executable, "-c", "pass"], env, side)
    imported, _ = timed([sys.executable, "-c", "import tradeledger.adapters.cli"], env, side)
    wall, peak = timed([sys.executable, "-m", "tradeledger.adapters.cli", "backtest", "--data", str(data),
                        "--predictor", predictor, "--database", f"sqlite:///{store}"], env, side)
    return {f"{predictor}: whole-process wall s": wall, f"{predictor}: peak RSS MB": peak,
            f"{predictor}: import s": imported - bare, f"{predictor}: rest s": wall - (imported - bare)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candles", type=int, default=103_680)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--predictor", nargs="+", default=["sma_cross", "ensemble"])
    parser.add_argument("--before", help="an earlier commit to measure in the same run (a git worktree)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        data = repeated_file(args.candles, scratch)
        sides = {"after": ROOT}
        if args.before:
            sides["before"] = scratch / "before"
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(sides["before"]), args.before],
                           cwd=ROOT, check=True)
        try:
            figures = measure(sides, data, args, scratch)
        finally:
            if args.before:
                subprocess.run(["git", "worktree", "remove", "--force", str(sides["before"])], cwd=ROOT, check=True)
    report(figures, args.candles)


def measure(sides: dict[str, Path], data: Path, args: argparse.Namespace, scratch: Path
            ) -> dict[str, dict[str, list[float]]]:
    figures: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in sides}
    for round_ in range(args.repeat):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for predictor in args.predictor:
            for name in order:
                for figure, value in one_round(sides[name], data, predictor, scratch).items():
                    figures[name][figure].append(value)
                    print(f"round {round_ + 1} {name:6} {figure}: {value:,.2f}", flush=True)
    return figures


def report(figures: dict[str, dict[str, list[float]]], candles: int) -> None:
    after = {figure: statistics.median(values) for figure, values in figures["after"].items()}
    before = {figure: statistics.median(values) for figure, values in figures.get("before", {}).items()}
    print(f"\n{'figure (medians)':40} {'before':>10} {'after':>10} {'after/before':>13}")
    for figure, value in after.items():
        old = before.get(figure)
        print(f"{figure:40} {old if old is not None else float('nan'):>10,.2f} {value:>10,.2f} "
              f"{value / old if old else float('nan'):>13.3f}")
    walls = [f for f in after if f.endswith("whole-process wall s")]
    print("\n".join(f"{f.split(':')[0]:10} {candles:,} candles: whole process {candles / after[f]:,.0f} candles/s, "
                    f"{after[f]:.1f} s wall, peak {after[f.replace('whole-process wall s', 'peak RSS MB')]:,.0f} MB"
                    + (f", {after[f] / before[f]:.3f}x the earlier commit's wall time" if f in before else "")
                    for f in walls))


if __name__ == "__main__":
    main()
