"""Step 2: the CDS Hooks 2.0 request, one model per hook, discriminated on ``hook``.

Lenient where real EHRs are sloppy (the sandbox's draftOrders Bundle has no ``type``), strict where a
mistake would mislead the rules (a missing patientId, a context that belongs to another hook).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, field_validator, model_validator

from .wire import WireModel

FhirResource = dict[str, Any]


class FhirAuthorization(WireModel):
    """OAuth 2.0 token for ``fhirServer``. Its keys are snake_case on the wire, as in OAuth."""

    model_config = ConfigDict(alias_generator=None, extra="ignore")

    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: int = Field(ge=0)
    scope: str
    subject: str
    patient: str | None = None

    @field_validator("token_type")
    @classmethod
    def _bearer_only(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError("token_type must be 'Bearer'")
        return "Bearer"


class BundleEntry(WireModel):
    resource: FhirResource | None = None

    @field_validator("resource")
    @classmethod
    def _has_resource_type(cls, value: FhirResource | None) -> FhirResource | None:
        if value is not None and not isinstance(value.get("resourceType"), str):
            raise ValueError("each Bundle entry resource needs a resourceType")
        return value


class DraftOrders(WireModel):
    """A Bundle of draft orders. ``type`` is optional because the CDS Hooks sandbox omits it."""

    resource_type: Literal["Bundle"]
    type: str | None = None
    entry: list[BundleEntry] = Field(default_factory=list)

    def resources(self) -> list[FhirResource]:
        return [e.resource for e in self.entry if e.resource is not None]


class _Context(WireModel):
    user_id: str = Field(min_length=1)
    patient_id: str = Field(min_length=1)
    encounter_id: str | None = None


class PatientViewContext(_Context):
    pass


class OrderSignContext(_Context):
    draft_orders: DraftOrders


class OrderSelectContext(OrderSignContext):
    selections: list[str] = Field(min_length=1)


class MedicationPrescribeContext(_Context):
    """The legacy hook: ``medications`` is a Bundle (R4) or a plain list (STU3 and earlier)."""

    medications: DraftOrders | list[FhirResource]

    @field_validator("medications", mode="before")
    @classmethod
    def _list_of_resources(cls, value: Any) -> Any:
        if isinstance(value, list) and not all(
            isinstance(r, dict) and isinstance(r.get("resourceType"), str) for r in value
        ):
            raise ValueError("medications must be a Bundle or a list of FHIR resources")
        return value


class _HookRequest(WireModel):
    hook_instance: str = Field(json_schema_extra={"format": "uuid"})
    fhir_server: str | None = Field(default=None, json_schema_extra={"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})
    fhir_authorization: FhirAuthorization | None = None
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None

    @field_validator("hook_instance")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError("hookInstance must be a UUID") from None
        return value

    @field_validator("fhir_server")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("fhirServer must be an http(s) base URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _token_needs_server(self) -> _HookRequest:
        if self.fhir_authorization is not None and self.fhir_server is None:
            raise ValueError("fhirAuthorization was sent without fhirServer")
        return self

    def draft_orders(self) -> list[FhirResource]:
        """The resources being ordered; empty for patient-view."""
        return []


class PatientViewRequest(_HookRequest):
    hook: Literal["patient-view"]
    context: PatientViewContext


class OrderSelectRequest(_HookRequest):
    hook: Literal["order-select"]
    context: OrderSelectContext

    def draft_orders(self) -> list[FhirResource]:
        return self.context.draft_orders.resources()


class OrderSignRequest(_HookRequest):
    hook: Literal["order-sign"]
    context: OrderSignContext

    def draft_orders(self) -> list[FhirResource]:
        return self.context.draft_orders.resources()


class MedicationPrescribeRequest(_HookRequest):
    hook: Literal["medication-prescribe"]
    context: MedicationPrescribeContext

    def draft_orders(self) -> list[FhirResource]:
        medications = self.context.medications
        return medications.resources() if isinstance(medications, DraftOrders) else list(medications)


HookRequest = Annotated[
    PatientViewRequest | OrderSelectRequest | OrderSignRequest | MedicationPrescribeRequest,
    Field(discriminator="hook"),
]
HOOK_REQUEST = TypeAdapter(HookRequest)
