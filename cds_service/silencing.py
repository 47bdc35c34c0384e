"""What a clinician records once for a patient: a card overridden with a reason that silences its topic for
that patient (``cards/silencing.toml``), such as informed consent to off-label use documented.

The card log knows the patient only by a keyed hash (HMAC-SHA256, with a secret from settings) of the FHIR
server and the patient id, and only on cards of a topic that can be silenced: it finds the patient's earlier
cards, and without the secret cannot be turned back into an id or matched against another system's. The
store is asked only when such a card is about to be shown; when it cannot answer, the card is shown: a store
outage costs a repeated card, never a missing one. A critical card is never silenced.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from .cards import Card
from .content import Content
from .feedback import OverrideOnRecord
from .feedback_store import FeedbackStore
from .settings import Settings

log = logging.getLogger(__name__)


class Silencing:
    def __init__(self, content: Content, store: FeedbackStore, secret: bytes):
        self._entries = content.silencing.silence
        self._topics = frozenset(e.topic for e in self._entries)
        self._reason_system = content.vocabulary.override_reason_system
        self._store = store
        self._secret = secret

    def patient_key(self, fhir_server: str | None, patient_id: str) -> str:
        """The same patient on the same FHIR server gives the same key; a prefetch-only call has no server."""
        server = (fhir_server or "").rstrip("/")
        return hmac.new(self._secret, f"{server}\n{patient_id}".encode(), hashlib.sha256).hexdigest()

    def keeps_key(self, topic: str) -> bool:
        """Whether the card log keeps the patient key beside a card of this topic."""
        return topic in self._topics

    def quiet(self, cards: list[Card], patient_key: str, now: datetime) -> list[Card]:
        """``cards`` without those a clinician silenced for this patient."""
        present = {c.topic for c in cards if c.indicator != "critical"}
        asked = [
            OverrideOnRecord(e.topic, e.reason, self._reason_system, now - timedelta(days=e.days))
            for e in self._entries
            if e.topic in present
        ]
        if not asked:
            return cards
        try:
            silenced = self._store.silenced_topics(patient_key, asked)
        except Exception as exc:  # any driver error: show the card rather than lose it
            log.warning("silenced cards could not be looked up (%s); the cards are shown", type(exc).__name__)
            return cards
        return [c for c in cards if c.topic not in silenced or c.indicator == "critical"]


def patient_key_secret(settings: Settings) -> bytes:
    """The secret of ``settings``, else the one kept in ``settings.patient_key_secret_file``, made on first use
    so that keys stay the same across restarts and workers of one installation."""
    if settings.patient_key_secret is not None:
        return settings.patient_key_secret.get_secret_value().encode()
    path = settings.patient_key_secret_file
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it first
        return _read_secret(path)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32))
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    secret = path.read_text().strip().encode()
    if len(secret) < 32:
        raise ValueError(f"{path}: the patient-key secret must be at least 32 characters")
    return secret
