"""``python -m bench.store_faults [--postgres URL]``: hook calls, feedback and /readyz while the store fails.

Signed calls (a fresh JWT each, so every call claims its ``jti`` in the replay cache) go one after the
other through the WSGI app, the same number under each condition, baseline first, in one run:

- SQLite healthy, then locked by another writer for the whole run (what a stuck migration or a backup
  holding the write lock does);
- with ``--postgres``: PostgreSQL healthy, frozen (connections open, no byte moves: a stopped server) and
  on a closed port, each through a local TCP relay (``tests.db_helpers.TcpProxy``; needs the test extras).

For each: hook calls/s, p50, p99 and the slowest call (ms: while the store is down, one call per worker
every 5 s waits out the deadline before the replay check falls back to memory), the statuses hook calls
and 5 feedback posts got, and /readyz's status and time. ``CDS_STORE_TIMEOUT`` is the default (2 s).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import make_url
from werkzeug.test import create_environ

from cds_service import Settings, create_app
from cds_service.facts import utc_today
from cds_service.feedback_store import FeedbackStore, get_store
from cds_service.fixtures import hook_request, rolled_to
from tests.auth_helpers import BASE_URL, ClientsFile, Signer, default_client
from tests.db_helpers import TcpProxy, sqlite_write_lock

from .run import Samples, call_app

SERVICE_PATH = "/cds-services/baricitinib-order-select"
FEEDBACK_TIME = "2026-11-25T10:00:00Z"


def environ(path: str, body: bytes | None = None, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is None:
        return create_environ(path=path, headers=headers)
    return create_environ(
        path=path, method="POST", data=body, content_type="application/json", headers=headers
    )


def run_condition(name: str, database_url: str, clients: Path, calls: int, fault: Callable[[], Any]) -> str:
    app = create_app(Settings(database_url=database_url, trusted_clients=clients))
    body = orjson.dumps(
        rolled_to(hook_request("order-select", "sle-baseline", ["baricitinib-4mg"]), utc_today())
    )
    signer = Signer()
    hook, statuses, feedback_statuses = Samples(), Counter[str](), Counter[str]()
    try:
        with fault():
            started = time.perf_counter()
            for _ in range(calls):
                env = environ(SERVICE_PATH, body, signer.token(f"{BASE_URL}{SERVICE_PATH}"))
                call_started = time.perf_counter()
                status, _ = call_app(app, env)
                hook.add(time.perf_counter() - call_started)
                statuses[status.split()[0]] += 1
            elapsed = time.perf_counter() - started
            for _ in range(5):
                item = {"card": str(uuid.uuid4()), "outcome": "accepted", "outcomeTimestamp": FEEDBACK_TIME}
                feedback = orjson.dumps({"feedback": [item]})
                token = signer.token(f"{BASE_URL}{SERVICE_PATH}/feedback")
                status, _ = call_app(app, environ(f"{SERVICE_PATH}/feedback", feedback, token))
                feedback_statuses[status.split()[0]] += 1
            ready_started = time.perf_counter()
            ready, _ = call_app(app, environ("/readyz"))
            ready_ms = (time.perf_counter() - ready_started) * 1000
    finally:
        get_store(app).dispose()
    return (
        f"| {name} | {calls / elapsed:,.1f} | {hook.median:,.1f} | {hook.pct(99):,.1f} | "
        f"{hook.pct(100):,.0f} | "
        f"{dict(statuses)} | {dict(feedback_statuses)} | {ready.split()[0]} in {ready_ms:,.0f} ms |"
    )


@contextmanager
def relayed(proxy: TcpProxy, fault: str) -> Iterator[None]:
    getattr(proxy, fault)()
    try:
        yield
    finally:
        proxy.thaw()
        if fault == "shut":
            proxy.reopen()


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store_faults", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--calls", type=int, default=200, help="hook calls per condition (default 200)")
    parser.add_argument("--postgres", help="postgresql+psycopg:// URL of a scratch database")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cds-store-faults-"))
    clients = ClientsFile().add(**default_client()).write(folder)
    sqlite_path = folder / "cds.sqlite3"
    sqlite_url = f"sqlite:///{sqlite_path}"
    FeedbackStore(sqlite_url).dispose()
    run_condition("warm-up (not shown)", sqlite_url, clients, 20, nullcontext)
    rows = [
        run_condition("SQLite, healthy", sqlite_url, clients, args.calls, nullcontext),
        run_condition("SQLite, locked by another writer", sqlite_url, clients, args.calls,
                      lambda: sqlite_write_lock(sqlite_path)),
    ]  # fmt: skip
    if args.postgres:
        url = make_url(args.postgres)
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
        via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        try:
            rows += [
                run_condition("PostgreSQL, healthy", via_proxy, clients, args.calls, nullcontext),
                run_condition(
                    "PostgreSQL, frozen", via_proxy, clients, args.calls, lambda: relayed(proxy, "freeze")
                ),
                run_condition(
                    "PostgreSQL, closed port", via_proxy, clients, args.calls, lambda: relayed(proxy, "shut")
                ),
            ]
        finally:
            proxy.close()
    print(f"{args.calls} signed order-select calls per condition, one at a time; CDS_STORE_TIMEOUT 2 s\n")
    print("| store | calls/s | p50 ms | p99 ms | max ms | hook statuses | feedback statuses | /readyz |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
