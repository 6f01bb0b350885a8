"""Command start-up as the user meets it: `tradeledger --help`, `health` and `events`, each a fresh process.

Each side (this checkout, and with `--before REV [REV ...]` earlier commits in git worktrees) first records
a small backtest into a store of its own (its own schema), then the commands run against it in alternating
rounds, the sides' order turning round each round. A bare interpreter's start is measured in the same
rounds: it is the floor no command goes below. Medians of wall and CPU time (user + system); the ratios last.

    .venv/bin/python scripts/bench_startup.py [--repeat 15] [--candles 2000] [--before REV [REV ...]]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from bench_compare import side_environment  # noqa: E402
from bench_process import repeated_file, timed, worktrees  # noqa: E402

COMMANDS = {"--help": ["--help"], "health": ["health"], "events": ["events"]}
CLI = [sys.executable, "-m", "tradeledger.adapters.cli"]


def prepare(side: Path, data: Path, store: Path) -> None:
    """A store this side wrote itself: a backtest of `data` (health then has runs and projections to show)."""
    timed([*CLI, "backtest", "--data", str(data), "--predictor", "sma_cross", "--database", f"sqlite:///{store}"],
          side_environment(side), side)


def one_round(side: Path, store: Path) -> dict[str, tuple[float, float]]:
    env = side_environment(side)
    bare_wall, _, bare_cpu = timed([sys.executable, "-c", "pass"], env, side)
    figures = {"bare interpreter": (bare_wall, bare_cpu)}
    for name, argv in COMMANDS.items():
        database = [] if name == "--help" else ["--database", f"sqlite:///{store}"]
        wall, _, cpu = timed([*CLI, *argv, *database], env, side, ok=(0, 1))  # health: 1 is "degraded"
        figures[name] = (wall, cpu)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--candles", type=int, default=2_000, help="candles in each side's backtest store")
    parser.add_argument("--before", nargs="*", default=[], metavar="REV",
                        help="earlier commits to measure in the same run (git worktrees), or directories")
    args = parser.parse_args()
    walls: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    cpus: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with tempfile.TemporaryDirectory() as folder, worktrees(args.before, Path(folder)) as sides:
        data = repeated_file(args.candles, Path(folder))
        stores = {name: Path(folder) / f"{name}.sqlite" for name in sides}
        for name, side in sides.items():
            prepare(side, data, stores[name])
        for round_ in range(args.repeat):
            for name in (list(sides) if round_ % 2 == 0 else list(reversed(sides))):
                for command, (wall, cpu) in one_round(sides[name], stores[name]).items():
                    walls[name][command].append(wall)
                    cpus[name][command].append(cpu)
            print(f"round {round_ + 1} of {args.repeat}", file=sys.stderr, flush=True)
    report(walls, cpus)


def report(walls: dict[str, dict[str, list[float]]], cpus: dict[str, dict[str, list[float]]]) -> None:
    befores = [side for side in walls if side != "after"]
    print(f"{'command (medians, s)':22}" + "".join(f" {side[:10] + ' wall':>16} {'cpu':>6}" for side in befores)
          + f" {'after wall':>11} {'cpu':>6}" + "".join(f" {'/' + side[:10]:>12}" for side in befores))
    for command in walls["after"]:
        after = statistics.median(walls["after"][command])
        olds = [statistics.median(walls[side][command]) for side in befores]
        print(f"{command:22}"
              + "".join(f" {old:>16.3f} {statistics.median(cpus[side][command]):>6.3f}" for side, old in
                        zip(befores, olds))
              + f" {after:>11.3f} {statistics.median(cpus['after'][command]):>6.3f}"
              + "".join(f" {after / old:>12.3f}" for old in olds))


if __name__ == "__main__":
    main()
