"""Printing an HTML file to PDF with Debian's headless chromium (no downloaded browser, no network)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage", "--no-first-run", "--no-pdf-header-footer")
PRINT_TIMEOUT = 300  # seconds; a statement of a long backtest has tens of thousands of table rows


class PdfUnavailable(RuntimeError):
    """Chromium is not installed, or it did not print the file."""


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise PdfUnavailable("--pdf needs Debian's chromium (apt-get install chromium), which is not installed")
    return found


def print_pdf(html: Path, pdf: Path, browser: str) -> None:
    """Print `html` to `pdf`; a profile of its own in a temporary directory, so no user profile is touched."""
    with tempfile.TemporaryDirectory(prefix="tradeledger-pdf-") as profile:
        command = [browser, *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={pdf}", html.resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, timeout=PRINT_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise PdfUnavailable(f"chromium did not print {pdf} within {PRINT_TIMEOUT} s") from None
    if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise PdfUnavailable(f"chromium did not print {pdf} (exit {done.returncode}): {tail[0]}")
