"""The WSGI entry point gunicorn loads: settings from CDS_* variables, one JSON line per log record."""

from __future__ import annotations

import gc
import json
import logging
import sys
from datetime import UTC, datetime

from . import create_app
from .settings import Settings


class JsonLines(logging.Formatter):
    """Every record as one JSON object; the access log's ``fields`` become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        return json.dumps(line, separators=(",", ":"), default=str)


settings = Settings()
handler = logging.StreamHandler(sys.stderr)
handler.setFormatter(JsonLines())
logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
app = create_app(settings)
# The app's objects (content, rules, FHIR models) live as long as the process: keep them out of the
# collector's full passes. Done before gunicorn forks (--preload), it also keeps those pages shared.
gc.freeze()
