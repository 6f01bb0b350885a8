"""What the user waits for: the whole `tradeledger backtest` process, from the shell prompt to the summary.

The real ETH/BTC 5m file is repeated (shifted in time) to --candles candles and written once to a CSV
outside the repository. Each run is a fresh process on a fresh SQLite store; its wall time and its own
peak RSS (by /usr/bin/time) are taken; and `import` is the time a fresh process takes to
print `backtest --help` (minus a bare interpreter's start): what a backtest imports before it reads its
file (an older CLI imports every command's modules for any command). So the phases show: import, and the
rest (load, loop, summary: `bench_backtest.py` times those in-process and prints these whole-process figures
with them). With
`--before REV [REV ...]` the same runs alternate with the CLI of earlier commits (git worktrees), so every side
is measured in one run. Medians; the ratios last.

    .venv/bin/python scripts/bench_process.py [--candles 103680] [--repeat 3] [--predictor sma_cross ensemble]
                                              [--before REV [REV ...]]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Container, Iterator
from contextlib import contextmanager
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


def timed(command: list[str], env: dict[str, str], cwd: Path, ok: Container[int] = (0,)
          ) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of one child process; it must exit with a
    code in `ok`.

    The peak is taken by /usr/bin/time, not from this process's rusage of the child: Linux starts a child's
    peak at its parent's resident size (the address space it forked from), which for `bench_backtest.py`,
    holding the candles and the in-process runs, is larger than the CLI's own peak. The CPU time is what
    other work on a shared machine disturbs least; the wall time, what the user waits for, includes the
    waits for the disk."""
    with tempfile.NamedTemporaryFile("r") as figures:
        started = time.perf_counter()
        child = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", figures.name, *command], cwd=cwd,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - started
        if child.returncode not in ok:
            raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{child.stderr.decode()}")
        peak, user, system = figures.read().split()[-3:]
        return elapsed, int(peak) / 1024, float(user) + float(system)


def one_round(side: Path, data: Path, predictor: str, scratch: Path) -> dict[str, float]:
    env = side_environment(side)
    store = scratch / f"{side.name}-{predictor}.sqlite"
    store.unlink(missing_ok=True)
    bare, _, _ = timed([sys.executable, "-c", "pass"], env, side)
    imported, _, _ = timed([sys.executable, "-m", "tradeledger.adapters.cli", "backtest", "--help"], env, side)
    wall, peak, cpu = timed([sys.executable, "-m", "tradeledger.adapters.cli", "backtest", "--data", str(data),
                             "--predictor", predictor, "--database", f"sqlite:///{store}"], env, side)
    return {f"{predictor}: whole-process wall s": wall, f"{predictor}: whole-process CPU s": cpu,
            f"{predictor}: peak RSS MB": peak, f"{predictor}: import s": imported - bare,
            f"{predictor}: rest s": wall - (imported - bare)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candles", type=int, default=103_680)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--predictor", nargs="+", default=["sma_cross", "ensemble"])
    parser.add_argument("--before", nargs="*", default=[], metavar="REV",
                        help="earlier commits to measure in the same run (git worktrees), or directories")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, worktrees(args.before, Path(folder)) as sides:
        data = repeated_file(args.candles, Path(folder))
        figures = measure(sides, data, args, Path(folder))
    report(figures, args.candles)


@contextmanager
def worktrees(revisions: list[str], scratch: Path) -> Iterator[dict[str, Path]]:
    """This checkout as "after", and each revision checked out into a temporary git worktree (a directory
    given instead is used as it is: a tree with some changes applied, to measure them apart)."""
    sides, made = {"after": ROOT}, []
    try:
        for revision in revisions:
            if Path(revision).is_dir():
                sides[Path(revision).name] = Path(revision).resolve()
                continue
            sides[revision] = scratch / f"before-{revision}"
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(sides[revision]), revision],
                           cwd=ROOT, check=True)
            made.append(sides[revision])
        yield sides
    finally:
        for path in made:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=True)


def measure(sides: dict[str, Path], data: Path, args: argparse.Namespace, scratch: Path
            ) -> dict[str, dict[str, list[float]]]:
    """Every side's whole-process figures, the sides' order turning round each round."""
    figures: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in sides}
    for round_ in range(args.repeat):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for predictor in args.predictor:
            for name in order:
                for figure, value in one_round(sides[name], data, predictor, scratch).items():
                    figures[name][figure].append(value)
                    print(f"round {round_ + 1} {name:8} {figure}: {value:,.2f}", flush=True)
    return figures


def report(figures: dict[str, dict[str, list[float]]], candles: int) -> None:
    medians = {side: {f: statistics.median(v) for f, v in by_figure.items()} for side, by_figure in figures.items()}
    after, befores = medians["after"], [side for side in medians if side != "after"]
    print(f"\n{'figure (medians)':40}" + "".join(f" {side[:10]:>10}" for side in befores) + f" {'after':>10}"
          + "".join(f" {'/' + side[:10]:>12}" for side in befores))
    for figure, value in after.items():
        olds = [medians[side].get(figure) for side in befores]
        print(f"{figure:40}" + "".join(f" {old:>10,.2f}" for old in olds) + f" {value:>10,.2f}"
              + "".join(f" {value / old:>12.3f}" for old in olds))
    for figure in (f for f in after if f.endswith("whole-process wall s")):
        peak = after[figure.replace("whole-process wall s", "peak RSS MB")]
        print(f"{figure.split(':')[0]:10} {candles:,} candles: whole process {candles / after[figure]:,.0f} candles/s, "
              f"{after[figure]:.1f} s wall, peak {peak:,.0f} MB"
              + "".join(f", {after[figure] / medians[side][figure]:.3f}x {side}'s wall time"
                        f" (paired {paired_ratio(figures, side, figure):.3f}x)" for side in befores))


def paired_ratio(figures: dict[str, dict[str, list[float]]], side: str, figure: str) -> float:
    """The median of each round's ratio: a round's two runs are adjacent in time, and a shared machine's
    speed moves over minutes (rounds of one run differed by 1.5x on the AMD VM of session 6)."""
    return statistics.median(a / b for a, b in zip(figures["after"][figure], figures[side][figure], strict=True))


if __name__ == "__main__":
    main()
