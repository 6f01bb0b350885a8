"""The read models' own rules: schema, signal freshness, the health rule, the activity window, the health file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from tradeledger.adapters.database import MIGRATIONS, create_db_engine, upgrade
from tradeledger.adapters.healthfile import HealthFile, write_atomically
from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle, Decision, Prediction, Side
from tradeledger.migrations.autogenerate import compare_type, include_name, target_metadata
from tradeledger.projections.activity import ACTIVITY, KEEP_LAST
from tradeledger.projections.fold import Recorded
from tradeledger.projections.health_rows import AGENT_RUNS
from tradeledger.projections.health_rule import MAX_HEALTHY_LAG, AgentHealth, ProjectionHealth, agent_health, assess
from tradeledger.projections.replay import ReadModels
from tradeledger.projections.rows import table_for
from tradeledger.projections.signals import SIGNAL_GRACE, SIGNALS
from tests.projection_world import World

NOW = datetime(2024, 6, 1, 12, tzinfo=timezone.utc)


def test_the_migrations_create_exactly_the_tables_derived_from_the_row_structs(store_url: str) -> None:
    """Column names, types (affinity on SQLite), nullability, indexes and primary keys, table by table."""
    upgrade(store_url)
    engine = create_db_engine(store_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": compare_type, "include_name": include_name})
        diffs = compare_metadata(context, target_metadata)
        inspector = sa.inspect(conn)
        keys = {name: inspector.get_pk_constraint(name)["constrained_columns"] for name in target_metadata.tables}
    engine.dispose()
    assert diffs == []
    assert keys == {name: [c.name for c in t.primary_key.columns] for name, t in target_metadata.tables.items()}


def test_autogenerating_a_migration_on_a_database_at_head_proposes_nothing(store_url: str, tmp_path: Path) -> None:
    upgrade(store_url)
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    config = Config()
    config.set_main_option("script_location", str(scripts))
    engine = create_db_engine(store_url)
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        script = command.revision(config, "nothing", autogenerate=True, rev_id="9999")
    engine.dispose()
    assert script is not None and not isinstance(script, list)
    upgrade_body = Path(script.path).read_text().split("def upgrade() -> None:")[1].split("def downgrade")[0]
    assert [line.strip() for line in upgrade_body.splitlines() if line.strip() and "#" not in line] == ["pass"]


def test_a_row_struct_field_of_no_known_kind_names_its_column_type() -> None:
    class Odd(msgspec.Struct):
        key: str
        either: int | str

    with pytest.raises(TypeError, match="odd.either: no column type"):
        table_for(Odd, "odd", primary_key=["key"], metadata=sa.MetaData())
    odd = table_for(Odd, "odd", primary_key=["key"], types={"either": sa.Text}, metadata=sa.MetaData())
    assert [(c.name, type(c.type), c.nullable, c.primary_key) for c in odd.columns] == [
        ("key", sa.Text, False, True), ("either", sa.Text, False, False)]


def signal_rows(timeframe: str, open_time: datetime) -> list:
    market = Market.list("ETH/BTC", timeframe, at=open_time)
    one = Decimal(1)
    market.close_candle(Candle(symbol="ETH/BTC", timeframe=timeframe, open_time=open_time, open=one, high=one,
                               low=one, close=one, volume=one))
    market.generate_signal(Decision(prediction=Prediction.UP, confidence=0.7, model_name="m", model_version="1"),
                           is_actionable=True, data_quality=1.0, features_used=(), feature_values={})
    models = ReadModels()
    models.apply([Recorded(p, e) for p, e in enumerate(market.collect_events(), start=1)])
    return models.tables.rows(SIGNALS)


@pytest.mark.parametrize("timeframe, step", [("5m", timedelta(minutes=5)), ("1h", timedelta(hours=1))])
def test_a_signal_is_fresh_until_the_next_one_is_due_plus_grace(timeframe: str, step: timedelta) -> None:
    (row,) = signal_rows(timeframe, NOW)
    assert row.generated_at == NOW + step, "produced when its candle closes"
    assert row.fresh_until == NOW + 2 * step + SIGNAL_GRACE
    assert row.is_fresh(NOW + 2 * step) and not row.is_fresh(NOW + 2 * step + SIGNAL_GRACE + timedelta(seconds=1))


def agent(status: str) -> AgentHealth:
    return AgentHealth(status=status, heartbeat_age=60.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("head, state, lag, error, expected", [
    (10, "running", 0, None, 0),
    (10, "running", MAX_HEALTHY_LAG, None, 0),
    (10, "running", MAX_HEALTHY_LAG + 1, None, 1),
    (10, "stopped", 0, None, 1),
    (10, "none", 0, None, 1),
    (10, "stale", 0, None, 2),
    (10, "running", 0, "boom", 2),
    (None, "running", None, None, 2),
])
def test_the_health_rule(head: int | None, state: str, lag: int | None, error: str | None, expected: int) -> None:
    projection = ProjectionHealth(name="portfolio", position=0, lag=lag, error=error, error_position=error and 3)
    report = assess(now=NOW, head=head, agent=agent(state), projections=[projection], open_connections=0)
    assert report.exit_code == expected and bool(report.reasons) == (expected != 0)


def test_an_agent_is_stale_after_three_missed_heartbeats() -> None:
    world = World()
    world.run([("agent_start", 0), ("agent_beat", 0)])
    models = ReadModels()
    models.apply([Recorded(p, e) for p, e in enumerate(world.events, start=1)])
    (run,) = models.tables.rows(AGENT_RUNS)
    beat = run.last_heartbeat_at
    assert agent_health(run, now=beat + timedelta(seconds=15), heartbeat_interval=5).status == "running"
    assert agent_health(run, now=beat + timedelta(seconds=15.1), heartbeat_interval=5).status == "stale"


def test_the_activity_feed_keeps_the_newest_lines_only() -> None:
    account = Account.open("paper", "BTC", Decimal(1), at=NOW)
    for number in range(KEEP_LAST + 200):
        account.reject_order("ETH/BTC", Side.BUY, rule="r", reason=f"#{number}", at=NOW)
    events = account.collect_events()
    models = ReadModels()
    for start in range(0, len(events), 300):  # batch by batch, as the runner does
        models.apply([Recorded(p, e) for p, e in enumerate(events, start=1)][start:start + 300])
    rows = models.tables.rows(ACTIVITY)
    assert len(rows) == KEEP_LAST and rows[-1].position == len(events)
    assert rows[0].text == f"buy ETH/BTC rejected by r: #{len(events) - KEEP_LAST - 1}"


READER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    path, stop = Path(sys.argv[1]), Path(sys.argv[2])
    reads = bad = 0
    while not stop.exists():
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        reads += 1
        try:
            json.loads(text)
        except ValueError:
            bad += 1
    print(json.dumps({"reads": reads, "bad": bad}))
""")


def test_a_reader_never_sees_a_half_written_health_file(tmp_path: Path) -> None:
    path, stop = tmp_path / "health.json", tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), str(stop)], stdout=subprocess.PIPE,
                              text=True)
    try:
        for number in range(3000):
            # Sizes vary so a torn read would show as a truncated or mixed document.
            write_atomically(path, msgspec.json.encode({"n": number, "pad": "x" * (number % 50_000)}))
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=60)
    result = json.loads(out)
    assert result["reads"] > 0 and result["bad"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["health.json", "stop"], "no temp files left behind"


def test_the_health_file_holds_the_composed_report(tmp_path: Path) -> None:
    report = assess(now=NOW, head=7, agent=agent("running"), projections=[], open_connections=2)
    HealthFile(tmp_path / "h" / "health.json", lambda: report)()
    assert json.loads((tmp_path / "h" / "health.json").read_text())["open_connections"] == 2
