"""What a CLI run prints while it runs: one line per warning or error, never Dagster's stack traces.

Dagster's console logger prints every step failure with its whole stack, so a user's mistake (a missing token, a
batch key with ``..``) reached the terminal as a traceback. Here a record prints as ``level step: message`` from
its original message. Dagster's own events (step and run failures, skipped steps) are left to the report
printed at the end, which names the cause once.
``SYNAPSE_DAGSTER_LOG_LEVEL=DEBUG`` brings Dagster's own console logger back, stacks and all, for a bug report.
"""

from __future__ import annotations

import logging
import sys

import dagster as dg

LOG_LEVEL_ENV = "SYNAPSE_DAGSTER_LOG_LEVEL"
class _BriefHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        if getattr(record, "dagster_event", None) is not None:  # the framework's: the report says it once
            return
        message = str(meta.get("orig_message") or record.getMessage()).split("\n\n")[0].strip()
        if message.startswith("Dependencies for step"):  # the executor skipping steps after a failure
            return
        step = meta.get("step_key")
        print(f"  {record.levelname.lower()}: {f'{step}: ' if step else ''}{message}", file=sys.stderr)


@dg.logger({"log_level": dg.Field(str, default_value="WARNING")}, description="One line a record, no stacks.")
def brief_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.getLogger("synapse_dagster.cli.run")
    logger.handlers[:] = [_BriefHandler()]
    logger.setLevel(init_context.logger_config["log_level"].upper())
    logger.propagate = False
    return logger
