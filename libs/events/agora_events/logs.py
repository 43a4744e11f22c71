"""JSON-lines logging for every process: one object per line, with the current span's trace
and span ids.

Log ids, never personal data: names, emails and phone numbers stay out of log records.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from .tracing import current_ids

# "color_message" is uvicorn's copy of the message with terminal colours.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = current_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: int | str = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # uvicorn's access log would print client addresses and full paths with ids; we log
    # requests ourselves where needed.
    logging.getLogger("uvicorn.access").disabled = True
