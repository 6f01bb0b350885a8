"""Bot commands: answers read from the read models; /halt, /resume, /stopentry, /startentry, /forceexit and
/forcebuy append the same events as the API (through the same control service).

Every message is first checked by the rule for recorded text (domain.text):
control characters (but tab and newline) or more than 4096 characters get a
reply saying what is wrong, and nothing is recorded, not even a refusal.

Only chats in `telegram.allowed_chat_ids` are answered. A command from any
other chat does nothing but get a refusal and a `Gateway.CommandRefused`
event (chat, user, command, reason). Commands addressed to another bot in a
group (`/status@otherbot`) are ignored.

Replies quote the command they answer and are plain text (no parse mode:
nothing in them needs escaping). The read models are queried in a worker
thread, so a slow query never stalls the bot's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import NamedTuple

from telegram import Message, Update
from telegram.ext import ContextTypes

from tradeledger.adapters.services.queries import ReadModelQueries
from tradeledger.adapters.services.control import AccountMissing, Control
from tradeledger.adapters.services.gateway import GatewaySessions
from tradeledger.adapters.services.ports import Clock
from tradeledger.adapters.services.health import Health
from tradeledger.adapters.release import VERSION
from tradeledger.adapters.telegram import reports
from tradeledger.domain.control import FORCE_ENTER, FORCE_EXIT, HALT, RESUME, START_ENTRY, STOP_ENTRY
from tradeledger.domain.errors import InvalidValue
from tradeledger.domain.text import MAX_COMMAND, MAX_MESSAGE, MAX_REASON, InvalidText, recordable
from tradeledger.projections.alerts import shown, signed
from tradeledger.settings import Settings

log = logging.getLogger(__name__)

KIND = CHANNEL = "telegram"  # the gateway's kind, and the channel of its chat sessions
TRADES_SHOWN = 10
DAYS_SHOWN = 7
ALL_TRADES = 100_000  # /profit and /performance read every closed trade up to this many


class Request(NamedTuple):
    chat_id: int
    args: tuple[str, ...]


class Spec(NamedTuple):
    help: str
    reply: Callable[[Request], str]
    usage: str = ""


def chat_peer(chat_id: int) -> str:
    return f"chat:{chat_id}"


def parse(text: str, bot_username: str) -> tuple[str, tuple[str, ...]] | None:
    """`/status@bot a b` -> ("status", ("a", "b")); None when addressed to another bot."""
    head, *args = text.split()
    name, _, addressee = head[1:].partition("@")
    if addressee and addressee.lower() != bot_username.lower():
        return None
    return name.lower(), tuple(args)


class Commands:
    def __init__(self, *, control: Control, read_models: ReadModelQueries, health: Health, gateway: GatewaySessions,
                 settings: Settings, clock: Clock) -> None:
        self.commands = control
        self.account = settings.trading.account
        self.read_models = read_models
        self.health_report = health.report
        self.gateway = gateway
        self.clock = clock
        self.allowed = frozenset(settings.telegram.allowed_chat_ids)
        self.max_open_trades = settings.trading.max_open_trades
        self.specs: dict[str, Spec] = {
            "status": Spec("trading state, equity and the agent", self.status),
            "balance": Spec("cash, equity, PnL and fees", self.balance),
            "positions": Spec("open positions", self.positions),
            "trades": Spec(f"the last {TRADES_SHOWN} closed trades", self.trades),
            "pnl": Spec(f"daily PnL, the last {DAYS_SHOWN} days", self.pnl),
            "signals": Spec("the latest signal of each market", self.signals),
            "models": Spec("each model's hit rate, Brier score and the trades it voted for", self.models),
            "health": Spec("agent, read models, event store", self.health),
            "halt": Spec("stop new entries (open positions may still close)", self.halt, "[reason]"),
            "resume": Spec("allow new entries again", self.resume, "[reason]"),
            "stopentry": Spec("reject new entries; exits (signals, stops) go on", self.stop_entry, "[reason]"),
            "startentry": Spec("allow entries again after /stopentry", self.start_entry, "[reason]"),
            "forceexit": Spec("sell at the next candle's open", self.force_exit, "SYMBOL|all [reason]"),
            "forcebuy": Spec("buy at the next candle's open, normal sizing", self.force_buy, "SYMBOL [reason]"),
            "profit": Spec("closed trades' PnL, win rate, best and worst", self.profit),
            "performance": Spec("net PnL per pair", self.performance),
            "daily": Spec(f"PnL per day, the last {reports.PERIODS_SHOWN['day']}", self.daily),
            "weekly": Spec(f"PnL per week, the last {reports.PERIODS_SHOWN['week']}", self.weekly),
            "monthly": Spec(f"PnL per month, the last {reports.PERIODS_SHOWN['month']}", self.monthly),
            "count": Spec("open positions and orders", self.count),
            "version": Spec("the running tradeledger version", self.version),
            "help": Spec("this list", self.help),
        }

    # -- dispatch -----------------------------------------------------------------

    async def handle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        try:  # before anything else: the text of every command may be recorded (a refusal, a reason)
            recordable("message", message.text, max_length=MAX_MESSAGE)
        except InvalidText as error:
            await message.reply_text(f"refused, nothing was done: {error}", do_quote=True)
            return
        parsed = parse(message.text, context.bot.username)
        if parsed is None:
            return
        name, args = parsed
        if chat.id not in self.allowed:
            user = update.effective_user
            await self.refuse(message, chat.id, user.id if user else None, name)
            return
        spec = self.specs.get(name)
        if spec is None:
            await message.reply_text(f"unknown command /{name}; /help lists the commands", do_quote=True)
            return
        log.info("/%s from chat %s", name, chat.id)
        try:
            text = await asyncio.to_thread(spec.reply, Request(chat.id, args))
        except InvalidText as error:
            text = f"refused, nothing was done: {error}"
        except Exception as error:  # noqa: BLE001 - logged with its traceback; the chat learns it failed
            log.exception("/%s from chat %s failed", name, chat.id)
            text = f"/{name} failed: {type(error).__name__}; the bot's log has the details"
        await message.reply_text(text, do_quote=True)

    async def refuse(self, message: Message, chat: int, user: int | None, name: str) -> None:
        peer = chat_peer(chat) + (f" user:{user}" if user is not None else "")
        reason = f"chat {chat} is not in telegram.allowed_chat_ids"
        log.warning("refused /%s from %s: %s", name[:MAX_COMMAND], peer, reason)
        await self.gateway.refuse(channel=CHANNEL, peer=peer, command=f"/{name}"[:MAX_COMMAND], reason=reason)
        await message.reply_text(f"This chat may not use this bot. To allow it, add {chat} to "
                                 "telegram.allowed_chat_ids.", do_quote=True)

    # -- answers ------------------------------------------------------------------

    def help(self, _request: Request) -> str:
        return "\n".join(f"/{' '.join(filter(None, (name, spec.usage)))}: {spec.help}"
                         for name, spec in self.specs.items())

    def status(self, _request: Request) -> str:
        view = self.read_models.portfolio()
        report = self.health_report()
        agent = report.agent
        lines = [f"health: {report.status}", f"agent: {agent.status}" + (
            f" (last heartbeat {agent.heartbeat_age:.0f}s ago)" if agent.heartbeat_age is not None else "")]
        if view is None:
            return "\n".join([f"{self.account}: not opened yet (no agent has run)", *lines])
        state = f"HALTED by {view.halted_rule}: {view.halted_reason}" if view.halted else "trading"
        state += ", entries stopped (/startentry)" if view.entries_stopped else ""
        return "\n".join([
            f"{view.account}: {state}",
            f"equity {shown(view.equity)} {view.quote_currency} ({view.return_percent:+.2f}%)",
            f"open orders {view.open_orders}, closed trades {view.trades_closed}", *lines,
        ])

    def balance(self, _request: Request) -> str:
        view = self.read_models.portfolio()
        if view is None:
            return f"{self.account}: not opened yet (no agent has run)"
        q = view.quote_currency
        return "\n".join([
            f"{view.account} ({q})", f"cash {shown(view.cash)}", f"equity {shown(view.equity)}",
            f"initial balance {shown(view.initial_balance)}",
            f"gross PnL {signed(view.gross_pnl)} (realised, before fees)", f"fees {shown(view.fees)}",
            f"net PnL {signed(view.net_pnl)} (gross - fees)", f"unrealised PnL {signed(view.unrealised_pnl)}",
            f"return {view.return_percent:+.2f}%",
        ])

    def positions(self, _request: Request) -> str:
        held = self.read_models.positions()
        if not held:
            return "no open positions"
        return "\n".join(
            f"{p.symbol}: {shown(p.quantity)} at {shown(p.average_price)}, last "
            f"{shown(p.last_price) if p.last_price is not None else 'n/a'}, unrealised {signed(p.unrealised_pnl)}"
            for p in held)

    def trades(self, _request: Request) -> str:
        closed = self.read_models.trades(TRADES_SHOWN)
        if not closed:
            return "no closed trades yet"
        return "\n".join(
            f"#{t.seq} {t.symbol} {shown(t.quantity)}: {shown(t.entry_price)} -> {shown(t.exit_price)}, "
            f"gross {signed(t.gross_pnl)} - fees {shown(t.fees)} = net PnL {signed(t.net_pnl)}, "
            f"closed {t.exit_time:%Y-%m-%d %H:%M} by {t.exit_reason}" for t in closed)

    def pnl(self, _request: Request) -> str:
        days = self.read_models.daily_pnl(None, None)[-DAYS_SHOWN:]
        if not days:
            return "no daily PnL yet"
        return "\n".join(f"{d.day.isoformat()}: {signed(d.pnl)}" for d in days)

    def signals(self, _request: Request) -> str:
        latest = self.read_models.signals()
        if not latest:
            return "no signals yet"
        now = self.clock()
        return "\n".join(
            f"{s.symbol} {s.timeframe}: {s.prediction.value} ({s.confidence:.2f})"
            f"{', actionable' if s.is_actionable else ''}, candle {s.candle_time:%Y-%m-%d %H:%M}, "
            f"{'fresh' if now <= s.fresh_until else 'STALE'}" for s in latest)

    def models(self, _request: Request) -> str:
        board = self.read_models.models()
        if not board.models:
            return "no predictions scored yet"
        return "\n".join(
            f"{m.model} ({m.role}): {_rate(m.hit_rate)} hits of {m.calls} calls, Brier {_score(m.brier)}; "
            f"last {m.window_calls}: {_rate(m.window_hit_rate)}, Brier {_score(m.window_brier)}; "
            f"{m.trades} trades voted for, net PnL {signed(m.pnl)}" for m in board.models)

    def health(self, _request: Request) -> str:
        report = self.health_report()
        return "\n".join([
            f"health: {report.status}" + "".join(f"\n- {reason}" for reason in report.reasons),
            f"agent: {report.agent.status}",
            f"event store: {'at position ' + str(report.head) if report.head is not None else 'UNREACHABLE'}",
            *(f"{p.name}: position {p.position}, lag {p.lag}" + (f", STOPPED at {p.error_position}: {p.error}"
                                                                  if p.error else "") for p in report.projections),
        ])

    def halt(self, request: Request) -> str:
        reason = " ".join(request.args) or "halted from Telegram"
        return self.control(HALT, request, reason, "trading halted: no new entries")

    def resume(self, request: Request) -> str:
        reason = " ".join(request.args) or "resumed from Telegram"
        return self.control(RESUME, request, reason, "trading resumed")

    def stop_entry(self, request: Request) -> str:
        reason = " ".join(request.args) or "entries stopped from Telegram"
        return self.control(STOP_ENTRY, request, reason, "entries stopped: exits go on")

    def start_entry(self, request: Request) -> str:
        reason = " ".join(request.args) or "entries started from Telegram"
        return self.control(START_ENTRY, request, reason, "entries allowed again")

    def force_exit(self, request: Request) -> str:
        return self.forced(FORCE_EXIT, request, "exit")

    def force_buy(self, request: Request) -> str:
        return self.forced(FORCE_ENTER, request, "entry")

    def forced(self, command: str, request: Request, what: str) -> str:
        if not request.args:
            return f"usage: /{'forceexit SYMBOL|all' if command == FORCE_EXIT else 'forcebuy SYMBOL'} [reason]"
        symbol, reason = request.args[0], " ".join(request.args[1:])
        symbol = symbol.lower() if symbol.lower() == "all" else symbol.upper()
        return self.control(command, request, reason, f"forced {what} of {symbol} placed: it fills at the next "
                            "candle's open", symbol)

    def profit(self, _request: Request) -> str:
        view = self.read_models.portfolio()
        if view is None:
            return f"{self.account}: not opened yet (no agent has run)"
        return reports.profit(view, self.read_models.trades(ALL_TRADES))

    def performance(self, _request: Request) -> str:
        return reports.performance(self.read_models.trades(ALL_TRADES))

    def daily(self, _request: Request) -> str:
        return reports.periods(self.read_models.daily_pnl(None, None), "day")

    def weekly(self, _request: Request) -> str:
        return reports.periods(self.read_models.daily_pnl(None, None), "week")

    def monthly(self, _request: Request) -> str:
        return reports.periods(self.read_models.daily_pnl(None, None), "month")

    def count(self, _request: Request) -> str:
        view = self.read_models.portfolio()
        if view is None:
            return f"{self.account}: not opened yet (no agent has run)"
        return reports.count(view, len(self.read_models.positions()), self.max_open_trades)

    def version(self, _request: Request) -> str:
        return f"tradeledger {VERSION}"

    def control(self, command: str, request: Request, reason: str, done: str, symbol: str = "") -> str:
        if reason:  # InvalidText: the reply says what is wrong
            reason = recordable("reason", reason, max_length=MAX_REASON)
        try:
            outcome = self.commands.issue(command, reason=reason, by=f"telegram:{request.chat_id}",
                                          channel=KIND, at=self.clock(), symbol=symbol)
        except (AccountMissing, InvalidValue) as error:
            return str(error)
        if outcome.status == "refused":
            return outcome.reason
        if outcome.status == "pending":
            return (f"{command} command {outcome.command_id} issued (log position {outcome.issued}); "
                    "the agent applies it at its next tick")
        log.info("%s from chat %s (position %s): %s", done, request.chat_id, outcome.position, reason)
        return f"{done} (log position {outcome.position})"


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def _score(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.3f}"
