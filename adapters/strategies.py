"""User strategies: a plain class in the user's own file, loaded from its path, behind the `Predictor` protocol.

`load_strategy("my_sma.py:MySma", params)` reads the file once, hashes exactly the bytes it executes
(SHA-256), imports it as a module of its own and checks the class against the contract of
docs/strategies.md; every problem is a `StrategyError` with a one-line message. `StrategyPredictor`
adapts one instance to `domain.predictors.Predictor`: it asks `decide` only with the candles that have
closed (the `HistoryEngine`'s window, never more than `lookback`), turns the answer into a `Decision`
named by the strategy, and turns an exception, an answer outside the contract or a decide slower than
`strategy.timeout` into hold with the error recorded in the signal, logging the candle it failed on.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import time
import types
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec

from tradeledger.adapters.errors import Refused
from tradeledger.domain.decisions import DecisionSettings
from tradeledger.domain.features import Features
from tradeledger.domain.history import CandleWindow
from tradeledger.domain.text import InvalidText, recordable
from tradeledger.domain.values import Decision, Prediction
from tradeledger.settings import Settings

log = logging.getLogger(__name__)

CONTRACT = ("name", "version", "lookback", "decide")  # what a strategy class must have; the rest are parameters
PARAMETER_TYPES = (bool, int, float, Decimal, str)  # bool first: it is an int too
MAX_LOOKBACK = 100_000
MAX_ERROR = 300  # characters of an error recorded in a signal
ANSWERS = "'up', 'down', 'hold' or (one of them, a confidence from 0 to 1)"


class StrategyError(Refused):
    """A strategy that cannot be used as given; `str()` is one line."""


class Strategy(msgspec.Struct, frozen=True, kw_only=True):
    """A loaded strategy: its class, where it came from, and the parameters it runs with."""

    spec: str  # FILE.py:ClassName, as given
    cls: type
    digest: str  # SHA-256 of the file's bytes, hex
    name: str
    version: str
    lookback: int
    params: dict[str, Any]  # every parameter, converted to its attribute's type

    def recorded_params(self) -> dict[str, str]:
        return {name: str(value) for name, value in self.params.items()}

    def instance(self) -> Any:
        """A fresh instance (each market of each trader has its own) with the parameters set on it."""
        strategy = self.cls()
        for name, value in self.params.items():
            setattr(strategy, name, value)
        return strategy


def load_strategy(spec: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """The strategy `FILE.py:ClassName` with `params` overriding its parameters; StrategyError when unusable."""
    path_text, _, class_name = spec.rpartition(":")
    path = Path(path_text).expanduser()
    if not path_text or not class_name:
        raise StrategyError(f"strategy {spec!r}: expected FILE.py:ClassName")
    try:
        source = path.read_bytes()
    except OSError as error:
        raise StrategyError(f"strategy file {path} cannot be read: {error.strerror or error}") from None
    digest = hashlib.sha256(source).hexdigest()
    module = _execute(path, source, digest)
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        found = sorted(n for n, v in vars(module).items() if isinstance(v, type) and v.__module__ == module.__name__)
        raise StrategyError(f"strategy file {path} has no class {class_name}"
                            + (f" (classes in it: {', '.join(found)})" if found else ""))
    where = f"strategy {class_name} ({path})"
    missing = [attribute for attribute in CONTRACT if not hasattr(cls, attribute)]
    if missing:
        raise StrategyError(f"{where} has no {', '.join(missing)} (a strategy needs {', '.join(CONTRACT)}; "
                            "see docs/strategies.md)")
    strategy = Strategy(spec=spec, cls=cls, digest=digest, name="", version="", lookback=1,
                        params=_parameters(cls, params or {}, where))
    try:
        instance = strategy.instance()
        # Read from an instance with the parameters set: a property may derive lookback from them.
        name, version, lookback, decide = (getattr(instance, attribute) for attribute in CONTRACT)
    except Exception as error:  # noqa: BLE001 - the user's constructor: any failure is reported, not raised
        raise StrategyError(f"{where}: creating it or reading its name, version or lookback failed: "
                            f"{type(error).__name__}: {error}") from None
    _check_contract(where, name, version, lookback, decide)
    return msgspec.structs.replace(strategy, name=name, version=version, lookback=lookback)


def _execute(path: Path, source: bytes, digest: str) -> types.ModuleType:
    """Run the file's bytes (the ones hashed) as a module of its own name, so two versions never mix."""
    module = types.ModuleType(f"tradeledger_strategy_{digest[:16]}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module  # dataclasses and pickling look a class's module up there
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - running the user's file is the point
    except Exception as error:  # noqa: BLE001 - a SyntaxError, a failed import: one line, never a traceback
        del sys.modules[module.__name__]
        raise StrategyError(f"strategy file {path} cannot be loaded: {type(error).__name__}: {error}") from None
    return module


def _check_contract(where: str, name: Any, version: Any, lookback: Any, decide: Any) -> None:
    if not callable(decide):
        raise StrategyError(f"{where}: decide must be a method decide(self, history)")
    if isinstance(lookback, bool) or not isinstance(lookback, int) or not 1 <= lookback <= MAX_LOOKBACK:
        raise StrategyError(f"{where}: lookback must be an integer from 1 to {MAX_LOOKBACK}, got {lookback!r}")
    for attribute, value in (("name", name), ("version", version)):
        if not isinstance(value, str) or not value.strip():
            raise StrategyError(f"{where}: {attribute} must be a non-empty string, got {value!r}")
        try:
            recordable(f"{where}: {attribute}", value, max_length=200)  # recorded with every signal
        except InvalidText as error:
            raise StrategyError(str(error)) from None


def parameter_defaults(cls: type) -> dict[str, Any]:
    """The parameters: public class attributes of a plain value type, except the contract's."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):  # a subclass's value wins
        for name, value in vars(klass).items():
            if not name.startswith("_") and name not in CONTRACT and isinstance(value, PARAMETER_TYPES):
                found[name] = value
    return found


def _parameters(cls: type, overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
    params = parameter_defaults(cls)
    unknown = [name for name in overrides if name not in params]
    if unknown:
        known = ", ".join(params) or "none"
        raise StrategyError(f"{where} has no parameter {unknown[0]!r} (its parameters: {known})")
    for name, given in overrides.items():
        params[name] = _convert(name, given, params[name], where)
    return params


def _convert(name: str, given: Any, default: Any, where: str) -> Any:
    """`given` (text from the CLI or the environment, a TOML scalar, or recorded text) as its default's type."""
    kind = type(default)
    text = str(given).strip()
    try:
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        if kind is str:
            return str(given)
        if isinstance(given, bool):
            raise ValueError(text)
        value = kind(text)
        if kind is not int and not math.isfinite(value):
            raise ValueError(text)
        return value
    except (ValueError, InvalidOperation):
        expected = {bool: "true or false", int: "an integer", float: "a number", Decimal: "a decimal"}[kind]
        raise StrategyError(f"{where}: parameter {name}: expected {expected} (its default is {default!r}), "
                            f"got {given!r}") from None


class StrategyPredictor:
    """One strategy instance behind the `Predictor` protocol, asked once per closed candle."""

    features_used: tuple[str, ...] = ()  # it sees candles, not the engine's features

    def __init__(self, strategy: Strategy, window: CandleWindow, *, timeout: float) -> None:
        self.strategy = strategy
        self.window = window
        self.timeout = timeout
        self.instance = strategy.instance()
        self.name = strategy.name
        self.version = strategy.version
        self._hold = self.decision(Prediction.HOLD, 0.0)

    def decision(self, prediction: Prediction, confidence: float, error: str = "") -> Decision:
        return Decision(prediction=prediction, confidence=confidence, model_name=self.name,
                        model_version=self.version, error=error)

    def on_candle(self, features: Features) -> Decision:
        if not self.window.full:
            return self._hold  # it has not seen `lookback` candles yet
        history = self.window.snapshot()
        started = time.perf_counter()
        try:
            answer = self.instance.decide(history)
        except Exception as error:  # noqa: BLE001 - the user's code: any failure is a recorded hold
            return self.failed(f"decide raised {type(error).__name__}: {error}")
        elapsed = time.perf_counter() - started
        if elapsed > self.timeout:
            return self.failed(f"decide took {elapsed:.3f} s, more than strategy.timeout {self.timeout:g} s")
        try:
            prediction, confidence = as_answer(answer)
        except ValueError:
            return self.failed(f"decide returned {answer!r:.100}, expected {ANSWERS}")
        return self.decision(prediction, confidence)

    def failed(self, problem: str) -> Decision:
        candle = self.window.last
        assert candle is not None, "decide is only asked once a candle closed"
        error = " ".join(problem.split())[:MAX_ERROR]
        error = "".join(ch if ch.isprintable() else "?" for ch in error)  # recordable text, whatever it raised
        log.warning("strategy %s %s failed on %s %s %s (recorded as hold): %s", self.name, self.version,
                    candle.symbol, candle.timeframe, candle.open_time.isoformat(), error)
        return self.decision(Prediction.HOLD, 0.0, error)


def as_answer(answer: Any) -> tuple[Prediction, float]:
    """`decide`'s answer as (prediction, confidence); ValueError when it is outside the contract.

    A bare "up" or "down" has confidence 1, "hold" 0 (as the built-in sma_cross)."""
    if isinstance(answer, str):
        prediction = Prediction(answer)  # ValueError for any other text
        return prediction, 0.0 if prediction is Prediction.HOLD else 1.0
    if isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], str):
        prediction, confidence = Prediction(answer[0]), answer[1]
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float, Decimal)):
            raise ValueError(answer)
        confidence = float(confidence)
        if not 0 <= confidence <= 1:  # NaN fails too
            raise ValueError(answer)
        return prediction, confidence
    raise ValueError(answer)


def resolved(settings: Settings) -> tuple[Strategy | None, Settings]:
    """The strategy of `strategy.path` (None: the built-in predictor) and the settings with its identity in
    `strategy.*` (digest, name, version, every parameter as text), which `DecisionSettings` records."""
    s = settings.strategy
    if s.path is None:
        return None, settings
    strategy = load_strategy(s.path, s.params)
    identity = msgspec.structs.replace(s, digest=strategy.digest, name=strategy.name, version=strategy.version,
                                       params=strategy.recorded_params())
    return strategy, msgspec.structs.replace(settings, strategy=identity)


class StrategyMismatch(StrategyError):
    """The history was decided by other code than this strategy: a finding of `reproduce` (exit 1)."""

    exit_code = 1


def refuse_other_strategy(recorded: DecisionSettings | None, strategy: Strategy | None, settings: Settings) -> None:
    """Raise unless `strategy` (resolved into `settings`) is the one that decided the history `recorded`:
    StrategyMismatch naming every difference (file digest, name, version, parameters); StrategyError when
    the history was decided by a strategy and none is given."""
    if recorded is None:
        return
    if strategy is None and recorded.strategy_digest is not None:
        raise StrategyError(f"this store was decided by the strategy {recorded.strategy_name} "
                            f"{recorded.strategy_version} (file sha256 {recorded.strategy_digest}): "
                            "pass --strategy FILE.py:ClassName (or set strategy.path)")
    now = DecisionSettings.of(msgspec.to_builtins(settings))
    changes = {name: change for name, change in now.changes_from(recorded).items() if name.startswith("strategy.")}
    if changes:
        listing = ", ".join(f"{name} recorded {old!r}, now {new!r}" for name, (old, new) in changes.items())
        raise StrategyMismatch(f"the recorded history was decided by other code ({listing})")
