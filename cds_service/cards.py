"""Step 6: the CDS Hooks 2.0 response: Card, Suggestion, Action, Link, Source, override reasons.

The validators hold the spec's field rules, so a rule that builds a card the spec forbids fails a test,
not an EHR.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from .wire import WireModel

Indicator = Literal["info", "warning", "critical"]
SUMMARY_MAX = 139  # the spec: "<140 characters"
# Where a card carries what is not for reading (content version, the topics of the items a card holds).
EXTENSION_KEY = "org.example.cds.baricitinib-sle"

_WORD = re.compile(r"[A-Za-z0-9][\w'./%<>=-]*")


def word_count(text: str) -> int:
    """Words as a reader counts them: "ANC", "1.2", "x10^3/uL" and "2026-11-30" are one each; markup is none."""
    return len(_WORD.findall(text))


def new_uuid() -> str:
    return str(uuid.uuid4())


class Coding(WireModel):
    code: str
    system: str | None = None
    display: str | None = None


class Source(WireModel):
    label: str = Field(min_length=1)
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(WireModel):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resource_id: str | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _target(self) -> Action:
        if self.type in ("create", "update") and self.resource is None:
            raise ValueError(f"a {self.type} action needs a resource")
        if self.type == "delete" and not self.resource_id:
            raise ValueError("a delete action needs a resourceId")
        return self


class Suggestion(WireModel):
    label: str = Field(min_length=1)
    uuid: str = Field(default_factory=new_uuid)
    is_recommended: bool | None = None
    actions: list[Action] | None = None
    extension: dict[str, Any] | None = None


class Link(WireModel):
    label: str = Field(min_length=1)
    url: str
    type: Literal["absolute", "smart"] = "absolute"
    app_context: str | None = None
    extension: dict[str, Any] | None = None


class Card(WireModel):
    uuid: str = Field(default_factory=new_uuid)
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX)
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selection_behavior: Literal["at-most-one", "any"] | None = None
    override_reasons: list[Coding] | None = None
    links: list[Link] | None = None
    extension: dict[str, Any] | None = None
    # The labs whose results this card lists as due or missing (not sent): a check waiting on one of them is
    # said on this card rather than on the data-quality card.
    _lists_labs: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="after")
    def _selection_behavior_with_suggestions(self) -> Card:
        if self.suggestions and self.selection_behavior is None:
            raise ValueError("selectionBehavior is required when a card has suggestions")
        if not self.suggestions:
            self.suggestions = None
            self.selection_behavior = None
        return self

    @property
    def topic(self) -> str:
        return self.source.topic.code if self.source.topic else "unknown"

    @property
    def lists_labs(self) -> frozenset[str]:
        return self._lists_labs

    def listing(self, labs: frozenset[str]) -> Card:
        """This card, noted as listing ``labs`` as due or missing."""
        self._lists_labs = labs
        return self


class CdsResponse(WireModel):
    cards: list[Card] = Field(default_factory=list)
    system_actions: list[Action] | None = None
    extension: dict[str, Any] | None = None
