"""The JWT replay cache when its database is out of reach: each worker remembers the tokens it let in,
until they expire, so cards keep coming and a token is still accepted only once by that worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from cds_service import Settings, create_app
from cds_service import replay_cache as replay_cache_module
from cds_service.facts import utc_today
from cds_service.feedback_store import FeedbackStore, get_store
from cds_service.fixtures import hook_request, rolled_to
from cds_service.replay_cache import MemoryReplayCache, ReplayCache, jwt_replay
from cds_service.store_deadline import StoreUnavailable
from tests.auth_helpers import BASE_URL, ISSUER, ClientsFile, Signer, default_client
from tests.db_helpers import read_rows, sqlite_write_lock


def later() -> datetime:
    """A token expiry 5 minutes ahead of now (not of when this module was imported)."""
    return datetime.now(UTC) + timedelta(minutes=5)

HOOK_PATH = "/cds-services/baricitinib-order-select"


def memory_claims() -> float:
    return REGISTRY.get_sample_value("cds_replay_cache_memory_claims_total") or 0.0


@pytest.fixture
def sqlite_store(tmp_path: Path):
    store = FeedbackStore(f"sqlite:///{tmp_path / 'cds.sqlite3'}", timeout=0.3)
    yield store, tmp_path / "cds.sqlite3"
    store.dispose()


def test_an_unreachable_store_falls_back_to_this_workers_memory(sqlite_store, monkeypatch) -> None:
    store, path = sqlite_store
    monkeypatch.setattr(replay_cache_module, "RETRY_STORE_AFTER_SECONDS", 0.0)  # no pause before retrying
    cache = ReplayCache(store.engine, timeout=0.3)
    before = memory_claims()
    with sqlite_write_lock(path):
        assert cache.claim(ISSUER, "during", later())
        assert not cache.claim(ISSUER, "during", later())  # replayed to the same worker: refused
    assert memory_claims() - before == 1
    assert not cache.claim(ISSUER, "during", later())  # the database is back but never heard of it
    assert cache.claim(ISSUER, "after", later())
    assert [row["jti"] for row in read_rows(f"sqlite:///{path}", jwt_replay)] == ["after"]


def test_without_the_memory_fallback_an_unreachable_store_refuses(sqlite_store) -> None:
    store, path = sqlite_store
    cache = ReplayCache(store.engine, timeout=0.3, memory_fallback=False)
    with sqlite_write_lock(path), pytest.raises(StoreUnavailable):
        cache.claim(ISSUER, "during", later())
    assert cache.claim(ISSUER, "during", later())


def test_the_memory_keeps_live_tokens_only_and_refuses_when_full_of_them() -> None:
    memory = MemoryReplayCache(capacity=2)
    now = datetime.now(UTC)
    assert memory.claim(ISSUER, "expired", now - timedelta(seconds=1))
    assert memory.claim(ISSUER, "live", later())
    assert memory.claim(ISSUER, "next", later())  # the expired token made room
    assert not memory.claim(ISSUER, "live", later())
    with pytest.raises(StoreUnavailable, match="full"):
        memory.claim(ISSUER, "one-too-many", later())


def authenticated_app(tmp_path: Path, **settings):
    values = {
        "database_url": f"sqlite:///{tmp_path / 'cds.sqlite3'}",
        "trusted_clients": ClientsFile().add(**default_client()).write(tmp_path),
        "store_timeout": 0.3,
        **settings,
    }
    return create_app(Settings(**values))


def call(client, token: str):
    body = rolled_to(hook_request("order-select", "sle-baseline", ["baricitinib-4mg"]), utc_today())
    return client.post(HOOK_PATH, json=body, headers={"Authorization": f"Bearer {token}"})


def test_cards_keep_coming_while_the_replay_store_is_down_and_a_replay_is_still_refused(tmp_path) -> None:
    app = authenticated_app(tmp_path)
    client = app.test_client()
    token = Signer().token(f"{BASE_URL}{HOOK_PATH}")
    try:
        with sqlite_write_lock(tmp_path / "cds.sqlite3"):
            first = call(client, token)
            replay = call(client, token)
        assert first.status_code == 200 and first.get_json()["cards"]
        assert replay.status_code == 401
    finally:
        get_store(app).dispose()


def test_a_site_that_prefers_refusing_gets_503_with_retry_after(tmp_path) -> None:
    app = authenticated_app(tmp_path, replay_memory_fallback=False)
    client = app.test_client()
    try:
        with sqlite_write_lock(tmp_path / "cds.sqlite3"):
            refused = call(client, Signer().token(f"{BASE_URL}{HOOK_PATH}"))
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        assert refused.get_json()["code"] == "store-unavailable"
        assert call(client, Signer().token(f"{BASE_URL}{HOOK_PATH}")).status_code == 200
    finally:
        get_store(app).dispose()
