"""Steps 3 to 6 in order: gather the data, build the facts, run the rules, return the response."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import requests

from .cards import CdsResponse
from .content import Content
from .facts import build_facts
from .fhir_allowlist import FhirServerAllowlist, NotAllowedFhirServer
from .fhir_client import Deadline, FhirClient
from .gather import gather
from .hook_request import MedicationPrescribeRequest, OrderSelectRequest, OrderSignRequest, PatientViewRequest
from .rules import evaluate
from .services import ServiceDeclaration
from .settings import Settings

AnyHookRequest = PatientViewRequest | OrderSelectRequest | OrderSignRequest | MedicationPrescribeRequest


@dataclass(frozen=True)
class Runtime:
    """What a call needs besides its request, built once per process at start-up."""

    settings: Settings
    content: Content
    session: requests.Session
    executor: ThreadPoolExecutor

    def fhir_client(
        self, request: AnyHookRequest, deadline: Deadline, allowed: FhirServerAllowlist | None = None
    ) -> FhirClient | None:
        """The client for ``request.fhir_server``, or a stand-in that never calls it when it is not on
        ``allowed`` (None: the open-mode list, ``CDS_FHIR_SERVERS`` or loopback)."""
        if request.fhir_server is None:
            return None
        if allowed is None:
            allowed = FhirServerAllowlist.open_mode(self.settings.fhir_servers)
        if not allowed.allows(request.fhir_server):
            return NotAllowedFhirServer()
        token = request.fhir_authorization.access_token if request.fhir_authorization else None
        s = self.settings
        return FhirClient(
            self.session,
            request.fhir_server,
            token,
            timeout=(s.fhir_connect_timeout, s.fhir_read_timeout),
            max_pages=s.fhir_max_pages,
            max_bytes=s.fhir_max_response_bytes,
            deadline=deadline,
        )


def run(
    service: ServiceDeclaration,
    request: AnyHookRequest,
    runtime: Runtime,
    today: date,
    fhir_servers: FhirServerAllowlist | None = None,
    *,
    bundled: bool = True,
) -> CdsResponse:
    """``fhir_servers``: the FHIR servers the calling client may name (None: open mode's list); ``bundled``:
    see ``rules.evaluate``."""
    content = runtime.content
    patient_id = request.context.patient_id
    deadline = Deadline.after(runtime.settings.call_deadline)
    gathered = gather(
        service.queries(content, patient_id),
        service.kinds(content),
        service.required_keys(content),
        patient_id,
        request.prefetch,
        runtime.fhir_client(request, deadline, fhir_servers),
        runtime.executor,
        deadline,
    )
    facts = build_facts(
        request.hook, patient_id, request.draft_orders(), gathered, content, today, service.unreported_keys(content)
    )
    return CdsResponse(cards=evaluate(facts, content, bundled=bundled))
