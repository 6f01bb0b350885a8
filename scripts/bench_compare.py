"""A/B benchmark: this checkout against an earlier commit, in one run.

    .venv/bin/python scripts/bench_compare.py --before REV [--after REV] [--rounds 3] [--bench store backtest rebuild]

Checks REV (and --after, if given; otherwise this work tree is the after side) out into temporary git worktrees and runs each benchmark script of
both sides in alternating order (before, after; then after, before; ...), one
repeat per round, each in a fresh process, so drift in the machine's load falls
on both sides alike. The earlier side runs its own copy of the script against
its own code. Prints every figure's median per side and the after/before ratio
(for rates > 1 is faster; for overheads < 1 is better); the ratios come last.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Each benchmark: its arguments for one repeat, and the patterns of the figures it prints.
BENCHES: dict[str, tuple[list[str], list[tuple[str, str]]]] = {
    "store": (["--repeat", "1"], [
        (r"^(\w+)\s+(\d+) ticks/append: ours\s+([\d,]+) ev/s", "store {0} {1}/append: ours ev/s"),
        (r"^(\w+)\s+(\d+) ticks/append:.*overhead ([\d.]+)x", "store {0} {1}/append: overhead x"),
    ]),
    "backtest": (["--repeat", "1"], [
        (r"^(\w+)\s+[\d,]+ candles: persisted\s+([\d,]+)", "backtest {0}: persisted candles/s"),
        (r"^(\w+)\s+[\d,]+ candles:.*in-memory baseline\s+([\d,]+)", "backtest {0}: in-memory candles/s"),
    ]),
    "rebuild": (["--runs", "1"], [
        (r"^run 1: baseline ([\d,]+) events/s", "rebuild: read+decode events/s"),
        (r"^run 1: .*rebuild ([\d,]+) events/s", "rebuild: rebuild events/s"),
    ]),
}


def run_bench(side: Path, bench: str, extra: list[str]) -> dict[str, float]:
    args, patterns = BENCHES[bench]
    command = [sys.executable, str(side / "scripts" / f"bench_{bench}.py"), *args, *extra]
    done = subprocess.run(command, cwd=side, capture_output=True, text=True, env=side_environment(side))
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    output = done.stdout
    figures = {}
    for line in output.splitlines():
        for pattern, name in patterns:
            if match := re.search(pattern, line.strip()):
                *labels, value = match.groups()
                figures[name.format(*labels)] = float(value.replace(",", ""))
    return figures


def side_environment(side: Path) -> dict[str, str]:
    """Imports of `tradeledger.*` resolve to this side's files, not to the editable install's work tree."""
    if side == ROOT:
        return dict(os.environ)
    packages = side.parent / f"{side.name}-packages"
    if not packages.exists():
        packages.mkdir()
        (packages / "tradeledger").symlink_to(side)
    return {**os.environ, "PYTHONPATH": str(packages)}


def compare(sides: dict[str, Path], benches: list[str], rounds: int, scratch: Path) -> None:
    medians: dict[str, dict[str, list[float]]] = {"before": defaultdict(list), "after": defaultdict(list)}
    for round_ in range(rounds):
        order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
        for bench in benches:
            for name in order:
                extra = ["--path", str(scratch / f"rebuild-{name}.sqlite")] if bench == "rebuild" else []
                for figure, value in run_bench(sides[name], bench, extra).items():
                    medians[name][figure].append(value)
                    print(f"round {round_ + 1} {name:6} {figure}: {value:,.2f}", flush=True)
    print(f"\n{'figure':45} {'before':>12} {'after':>12} {'after/before':>13}")
    for figure, values in medians["after"].items():
        old, new = statistics.median(medians["before"][figure]), statistics.median(values)
        print(f"{figure:45} {old:>12,.2f} {new:>12,.2f} {new / old:>13.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--after", help="the later commit (default: this work tree as it is)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bench", nargs="+", choices=sorted(BENCHES), default=["store", "backtest", "rebuild"])
    args = parser.parse_args()
    revisions = {"before": args.before, "after": args.after}
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "shared").symlink_to(ROOT.parent / "shared")  # the data the scripts read as ../shared
        sides = {name: Path(scratch) / name if rev else ROOT for name, rev in revisions.items()}
        added = [name for name, rev in revisions.items() if rev]
        for name in added:
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(sides[name]), revisions[name]],
                           cwd=ROOT, check=True)
        try:
            compare(sides, args.bench, args.rounds, Path(scratch))
        finally:
            for name in added:
                subprocess.run(["git", "worktree", "remove", "--force", str(sides[name])], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
