"""Logging helpers of the matrix project."""

from __future__ import annotations

import logging


class DropSlowCallbackReports(logging.Filter):
    """Drop asyncio's debug-mode "Executing <callback> took 0.123 seconds" reports.

    PYTHONDEVMODE turns asyncio's debug mode on, which reports every step slower than
    100 ms: a statement about the machine's speed, which the tests must not assert.
    Every other asyncio record (an unclosed session, a task destroyed while pending)
    goes through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Executing "))
