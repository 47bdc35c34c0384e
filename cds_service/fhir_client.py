"""The one way this service talks to an EHR's FHIR server: ``FhirClient.search``.

One pooled ``requests.Session`` per process, (connect, read) timeouts on every call, the EHR's bearer
token sent only when there is one, searchset ``next`` links followed up to a bound and never off the
server's own origin, and a response size cap. Every failure is one exception, ``FhirUnavailable``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

Json = dict[str, Any]


class FhirUnavailable(Exception):
    """The data could not be had. ``unreachable`` means the server could not be contacted at all."""

    def __init__(self, reason: str, *, unreachable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


class FhirTruncated(Exception):
    """A newest-first search stopped at the page bound: ``resources`` are the newest results, usable as such."""

    def __init__(self, resources: list[Json], reason: str):
        super().__init__(reason)
        self.resources = resources
        self.reason = reason


_NEWEST_FIRST = "_sort=-date"


class FhirClient:
    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        access_token: str | None,
        *,
        timeout: tuple[float, float],
        max_pages: int,
        max_bytes: int,
    ):
        self.session = session
        self.base_url = base_url.rstrip("/") + "/"
        self.access_token = access_token
        self.timeout = timeout
        self.max_pages = max_pages
        self.max_bytes = max_bytes

    def search(self, query: str) -> list[Json]:
        """Resources answering ``query`` (a read such as ``Patient/1`` or a search), every page."""
        url: str | None = urljoin(self.base_url, query.lstrip("/"))
        resources: list[Json] = []
        seen: set[str] = set()
        pages = 0
        while url:
            if url in seen:
                raise FhirUnavailable(f"{_what(query)}: the server's paging links loop")
            seen.add(url)
            pages += 1
            body = self._get(url, query)
            if body.get("resourceType") != "Bundle":
                if body.get("resourceType") == "OperationOutcome":
                    raise FhirUnavailable(f"{_what(query)}: the server answered with an OperationOutcome")
                return [body]
            resources += [
                e["resource"]
                for e in (body.get("entry") if isinstance(body.get("entry"), list) else ())
                if isinstance(e, dict) and isinstance(e.get("resource"), dict)
                and (e.get("search") or {}).get("mode") != "outcome"
            ]
            url = _next_link(body)
            if url and not self._same_origin(url):
                raise FhirUnavailable(f"{_what(query)}: a paging link points away from the FHIR server")
            if url and pages >= self.max_pages:
                if _NEWEST_FIRST in query:
                    raise FhirTruncated(resources, f"{_what(query)}: only the newest {len(resources)} results "
                                        f"were read ({self.max_pages} pages); older ones were not")  # fmt: skip
                raise FhirUnavailable(f"{_what(query)}: more than {self.max_pages} pages of results")
        return resources

    def _same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base_url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _get(self, url: str, query: str) -> Json:
        headers = {"Accept": "application/fhir+json"}
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        try:
            with self.session.get(
                url, headers=headers, timeout=self.timeout, stream=True, allow_redirects=False
            ) as response:
                if response.is_redirect:
                    raise FhirUnavailable(f"{_what(query)}: the server redirected (not followed)")
                if response.status_code != 200:
                    raise FhirUnavailable(f"{_what(query)}: the server answered HTTP {response.status_code}")
                raw = response.raw.read(self.max_bytes + 1, decode_content=True)
        except requests.ConnectionError:
            raise FhirUnavailable("the FHIR server could not be reached", unreachable=True) from None
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise FhirUnavailable(f"{_what(query)}: the server did not answer in time") from None
        # Reading ``raw`` directly bypasses requests' wrapping: urllib3's own errors arrive as they are.
        except urllib3.exceptions.ProtocolError:
            raise FhirUnavailable(f"{_what(query)}: the response broke off") from None
        except urllib3.exceptions.DecodeError:
            raise FhirUnavailable(f"{_what(query)}: the response could not be decoded") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise FhirUnavailable(f"{_what(query)}: {type(exc).__name__}") from None
        if len(raw) > self.max_bytes:
            raise FhirUnavailable(f"{_what(query)}: the response is larger than {self.max_bytes} bytes")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise FhirUnavailable(f"{_what(query)}: the response is not JSON") from None
        if not isinstance(body, dict):
            raise FhirUnavailable(f"{_what(query)}: the response is not a FHIR resource")
        return body


def _next_link(bundle: Json) -> str | None:
    for link in bundle.get("link") if isinstance(bundle.get("link"), list) else ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _what(query: str) -> str:
    """The resource type a query asks for, never its parameters (which name the patient)."""
    return query.split("?")[0].split("/")[0] + " query"
