"""Load for `loadtest/run.sh`: hook calls and feedback posts, each with a fresh signed client JWT.

Every simulated EHR session calls order-select (with full prefetch, so no FHIR server is needed) and
patient-view, and sends feedback on a card it was shown. The feedback items the service acknowledged
(``{"received": n}``) are counted, with their card uuids, and written to ``LOAD_RESULT`` at the end, so
run.sh can look each one up in the database: an acknowledged item without its row is a lost write.

Environment: ``LOAD_KEY`` (PEM private key), ``LOAD_ISSUER``, ``LOAD_KID`` sign the tokens; without
``LOAD_KEY`` no token is sent (open mode). ``LOAD_RESULT`` is the JSON file written at the end.
"""

from __future__ import annotations

import copy
import json
import os
import random
import threading
import time
import uuid
from datetime import UTC, datetime

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from locust import HttpUser, between, events, task

from cds_service.facts import utc_today
from cds_service.fixtures import hook_request, rolled_to

KEY = (
    load_pem_private_key(open(os.environ["LOAD_KEY"], "rb").read(), None)
    if os.environ.get("LOAD_KEY")
    else None
)
ISSUER = os.environ.get("LOAD_ISSUER", "https://load.example")
KID = os.environ.get("LOAD_KID", "load")

ORDER_SELECT = rolled_to(hook_request("order-select", "sle-baseline", ["baricitinib-4mg"]), utc_today())
PATIENT_VIEW = rolled_to(hook_request("patient-view", "sle-on-baricitinib", []), utc_today())
OVERRIDE_SYSTEM = "https://cds.example.org/baricitinib-sle/CodeSystem/override-reason"

_lock = threading.Lock()
acknowledged = {"feedback_items": 0, "feedback_posts": 0, "hook_calls": 0, "cards": []}


class Ehr(HttpUser):
    wait_time = between(0.0, 0.05)

    def headers(self, path: str) -> dict[str, str]:
        if KEY is None:
            return {}
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": f"{self.host}{path}",
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        return {"Authorization": "Bearer " + jwt.encode(claims, KEY, algorithm="ES384", headers={"kid": KID})}

    def hook(self, service: str, template: dict) -> list[dict]:
        body = copy.deepcopy(template)
        body["hookInstance"] = str(uuid.uuid4())
        path = f"/cds-services/{service}"
        with self.client.post(
            path, json=body, headers=self.headers(path), name=path, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return []
            with _lock:
                acknowledged["hook_calls"] += 1
            return response.json().get("cards", [])

    @task(3)
    def order_select_then_feedback(self) -> None:
        cards = self.hook("baricitinib-order-select", ORDER_SELECT)
        if not cards:
            return
        card = random.choice(cards)
        item = {"card": card["uuid"], "outcomeTimestamp": datetime.now(UTC).isoformat()}
        if random.random() < 0.5:
            item |= {
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {"code": "informed-consent-documented", "system": OVERRIDE_SYSTEM},
                    "userComment": "load test",
                },
            }
        else:
            item["outcome"] = "accepted"
        path = "/cds-services/baricitinib-order-select/feedback"
        with self.client.post(
            path, json={"feedback": [item]}, headers=self.headers(path), name=path, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            with _lock:
                acknowledged["feedback_items"] += response.json()["received"]
                acknowledged["feedback_posts"] += 1
                acknowledged["cards"].append(card["uuid"])

    @task(1)
    def patient_view(self) -> None:
        self.hook("baricitinib-patient-view", PATIENT_VIEW)


@events.test_stop.add_listener
def _write_result(**_kwargs) -> None:
    if os.environ.get("LOAD_RESULT"):
        with open(os.environ["LOAD_RESULT"], "w", encoding="utf-8") as handle:
            json.dump(acknowledged, handle)
