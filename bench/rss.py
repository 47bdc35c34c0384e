"""Peak RSS growth of one request, measured in a fresh process (run by ``bench.run`` as a subprocess).

``python -m bench.rss service BODY_FILE DB_FILE`` starts the app, sends one small request to warm it up,
reads BODY_FILE, resets the kernel's peak-RSS mark, makes one call with that body and reads the peak
again (Linux: ``VmHWM`` in /proc/self/status, reset through /proc/self/clear_refs; ``ru_maxrss`` would
carry the parent's peak across fork and exec). ``python -m bench.rss json BODY_FILE`` does the same for
``json.loads`` alone, and ``orjson`` for ``orjson.loads`` (the service's parser), for comparison.
Prints one JSON object: body bytes, RSS before, peak after (bytes).
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import orjson


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _baseline() -> int:
    """The RSS now, with the peak mark reset to it."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return _status("VmRSS")


def _peak() -> int:
    return _status("VmHWM")


def main(argv: list[str]) -> int:
    mode, body_path = argv[0], Path(argv[1])
    if mode in ("json", "orjson"):
        parse = json.loads if mode == "json" else orjson.loads
        body = body_path.read_bytes()
        before = _baseline()
        parsed = parse(body)
        after = _peak()
        del parsed
    else:
        from werkzeug.test import create_environ

        from cds_service import Settings, create_app
        from cds_service.facts import utc_today

        from .patients import hook_request
        from .run import call_app

        app = create_app(Settings(database_url=f"sqlite:///{argv[2]}"))
        content = app.extensions["cds_runtime"].content
        gc.freeze()  # as cds_service/wsgi.py does after start-up
        small = json.dumps(hook_request(100, content, utc_today())).encode()
        status, _ = call_app(app, create_environ(**_post(small)))
        assert status.startswith("200"), status
        body = body_path.read_bytes()
        environ = create_environ(**_post(body))
        before = _baseline()
        status, _ = call_app(app, environ)
        after = _peak()
        assert status.startswith("200"), status
    print(json.dumps({"body_bytes": len(body), "rss_before": before, "peak_after": after}))
    return 0


def _post(body: bytes) -> dict[str, object]:
    return {
        "path": "/cds-services/baricitinib-order-select",
        "method": "POST",
        "data": body,
        "content_type": "application/json",
    }


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
