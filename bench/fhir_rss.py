"""Peak and kept RSS growth of one hook call whose FHIR fallback meets a given server, in a fresh process.

``python -m bench.fhir_rss BASE_URL DB_FILE`` starts the app with settings from the environment,
warms it up with one fully prefetched call, then makes one call with only the patient prefetched and
``fhirServer`` = BASE_URL, so that the other keys are fetched from it. It prints one JSON object: the
call's status, its peak RSS growth (``bench.rss``'s kernel peak mark), what the process kept after
``gc.collect()`` (bytes), and what the data-quality card says of the observations. ``bench/faults.py``
runs it against each hostile answer, also from an older tree of the service (this file is copied there)
for a before/after comparison; so it uses only what that tree has too.
"""

from __future__ import annotations

import gc
import json
import sys

from cds_service import Settings, create_app
from cds_service.facts import utc_today

from .patients import hook_request
from .rss import _baseline, _peak, _status
from .run import call_app, post_environ


def main(argv: list[str]) -> int:
    base_url, db_file = argv
    app = create_app(Settings(database_url=f"sqlite:///{db_file}"))
    request = hook_request(100, app.extensions["cds_runtime"].content, utc_today())
    gc.freeze()  # as cds_service/wsgi.py does after start-up
    status, _ = call_app(app, post_environ(json.dumps(request).encode()))
    assert status.startswith("200"), status
    environ = post_environ(json.dumps(patient_only(request, base_url)).encode())
    gc.collect()
    before = _baseline()
    status, answer = call_app(app, environ)
    peak = _peak()
    gc.collect()
    kept = _status("VmRSS")
    print(json.dumps({
        "status": status,
        "peak_growth": peak - before,
        "kept_growth": kept - before,
        "reason": observations_reason(answer),
    }))  # fmt: skip
    return 0


def patient_only(request: dict, base_url: str) -> dict:
    """``request`` with only the patient prefetched and ``fhirServer`` set: the other keys are fetched."""
    return {**request, "prefetch": {"patient": request["prefetch"]["patient"]}, "fhirServer": base_url}


def observations_reason(answer: bytes) -> str:
    """Why the data-quality card of a hook response says the observations are unavailable ("-": they
    are not said to be)."""
    detail = " ".join(card["detail"] for card in json.loads(answer).get("cards", []))
    mark = "**Unavailable: observations**: "
    return detail.split(mark)[1].split("\n")[0] if mark in detail else "-"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
