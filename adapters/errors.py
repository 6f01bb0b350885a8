"""The one error the command line reports for any command: `Refused`, raised where the reason is known."""

from __future__ import annotations


class Refused(Exception):
    """What a command was given cannot be used as asked (a candle file, a calendar, a key file, a strategy,
    an exchange's answer, the store's history): the message says why in one line, and nothing is started.
    The CLI prints it and exits with `exit_code`: 2 for unusable input, 1 for a finding."""

    exit_code = 2
