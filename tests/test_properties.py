"""Property tests: whatever arrives, every endpoint answers, quickly, with JSON, and never a 5xx.

Arbitrary JSON, wrong types, huge and deeply nested documents, odd Unicode, raw bytes, and real requests
mutated at random go to every endpoint. Each call runs in a worker thread with a time limit, so a hang
fails the test instead of stalling the suite. FHIR calls never leave the process (``responses``).
"""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service import Settings, create_app
from cds_service.facts import utc_today
from cds_service.feedback_store import get_store
from cds_service.fixtures import hook_request, rolled_to
from cds_service.services import SERVICES
from tests.auth_helpers import BASE_URL, ClientsFile, Signer, default_client, unsigned_token
from tests.db_helpers import store_url  # noqa: F401 (fixture)
from tests.log_checks import with_phi

HOOK_PATHS = [f"/cds-services/{s.id}" for s in SERVICES]
FEEDBACK_PATHS = [f"{p}/feedback" for p in HOOK_PATHS]
POST_PATHS = HOOK_PATHS + FEEDBACK_PATHS
GET_PATHS = ["/cds-services", "/healthz", "/readyz", "/openapi.json"]
CALL_LIMIT_SECONDS = 20  # far above any real answer: only a hang reaches it
FAST = settings(
    max_examples=50, deadline=timedelta(seconds=5), suppress_health_check=list(HealthCheck), database=None
)
FEW = settings(
    max_examples=8, deadline=timedelta(seconds=15), suppress_health_check=list(HealthCheck), database=None
)

_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="property-call")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("properties")
    with responses.RequestsMock(assert_all_requests_are_fired=False):  # any FHIR call: connection refused
        yield create_app(Settings(database_url=f"sqlite:///{folder / 'cds.sqlite3'}", fhir_read_timeout=1.0))


@pytest.fixture(scope="module")
def authenticated_app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("properties-auth")
    settings_ = Settings(
        database_url=f"sqlite:///{folder / 'cds.sqlite3'}",
        trusted_clients=ClientsFile().add(**default_client()).write(folder),
    )
    return create_app(settings_)



def call(app, method: str, path: str, **kwargs: Any):
    """One request through the app, failing (not hanging) past CALL_LIMIT_SECONDS."""
    client = app.test_client()
    response = _pool.submit(client.open, path, method=method, **kwargs).result(timeout=CALL_LIMIT_SECONDS)
    assert response.status_code < 500, (method, path, response.status_code, response.get_data()[:300])
    if not (method == "OPTIONS" and response.status_code == 204):
        assert response.mimetype == "application/json", (path, response.status_code, response.mimetype)
        assert isinstance(json.loads(response.get_data()), dict)
        assert "Traceback" not in response.get_data(as_text=True)
    return response


def post_json(app, path: str, document: Any):
    return call(
        app,
        "POST",
        path,
        data=json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass"),
        content_type="application/json",
    )


def real_request(hook: str) -> dict[str, Any]:
    patient = "sle-on-baricitinib" if hook == "patient-view" else "sle-baseline"
    orders = [] if hook == "patient-view" else ["baricitinib-4mg"]
    return with_phi(rolled_to(hook_request(hook, patient, orders), utc_today()), "http://127.0.0.1:1/fhir")


REAL = {s.id: real_request(s.hook) for s in SERVICES}


# --- strategies ----------------------------------------------------------------------------------

odd_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Z", "C")), max_size=40
) | st.sampled_from(
    ["", "\x00", "\u202e\u200b\ufeff", "🧬" * 30, "e\u0301" * 10, "\uffff", "𝔘𝔫𝔦", "null", "NaN"]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | odd_text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(odd_text, inner, max_size=5),
    max_leaves=30,
)
known_keys = st.sampled_from(
    [
        "hook",
        "hookInstance",
        "context",
        "prefetch",
        "fhirServer",
        "fhirAuthorization",
        "userId",
        "patientId",
        "draftOrders",
        "selections",
        "medications",
        "entry",
        "resource",
        "resourceType",
        "feedback",
        "card",
        "outcome",
        "outcomeTimestamp",
        "overrideReason",
        "acceptedSuggestions",
        "reason",
        "code",
        "patient",
        "observations",
        "valueQuantity",
        "value",
        "unit",
        "system",
        "effectiveDateTime",
        "birthDate",
        "status",
        "extension",
    ]
)
structured = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(known_keys | odd_text, inner, max_size=6),
    max_leaves=40,
)


def paths_of(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a JSON document, to pick one to mutate."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths_of(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:5]):
            found += paths_of(value, (*prefix, index))
    return found


@st.composite
def mutated_requests(draw) -> tuple[str, dict[str, Any]]:
    """A real request for one service, with one to three fields deleted, retyped or replaced."""
    service_id = draw(st.sampled_from(sorted(REAL)))
    body = copy.deepcopy(REAL[service_id])
    for _ in range(draw(st.integers(1, 3))):
        paths = paths_of(body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = body
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["delete", "replace", "wrong-type", "wrap"]))
        key = path[-1]
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(structured)
        elif action == "wrong-type":
            current = parent[key]
            options = [v for v in ({}, [], "", 0, 1.5, True, None, "x" * 3) if type(v) is not type(current)]
            parent[key] = draw(st.sampled_from(options))
        else:
            parent[key] = [parent[key]]
    return service_id, body


def nested(depth: int, kind: str) -> Any:
    node: Any = "leaf"
    for _ in range(depth):
        node = [node] if kind == "list" else {"a": node}
    return node


# --- properties ----------------------------------------------------------------------------------


@FAST
@given(path=st.sampled_from(POST_PATHS), document=json_values)
def test_arbitrary_json_to_every_post_endpoint(app, path, document):
    response = post_json(app, path, document)
    assert (
        response.status_code in (400, 404) or path.endswith("/feedback") or response.status_code in (200, 412)
    )


@FAST
@given(path=st.sampled_from(POST_PATHS), document=st.dictionaries(known_keys, structured, max_size=8))
def test_objects_with_the_right_keys_and_wrong_values(app, path, document):
    post_json(app, path, document)


@FAST
@given(case=mutated_requests())
def test_mutated_real_requests(app, case):
    service_id, body = case
    response = post_json(app, f"/cds-services/{service_id}", body)
    assert response.status_code in (200, 400, 412)


@FAST
@given(
    path=st.sampled_from(POST_PATHS + GET_PATHS),
    raw=st.binary(max_size=300),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/json; charset=latin-1",
            "text/plain",
            "application/fhir+json",
            "",
            "multipart/form-data; boundary=x",
        ]
    ),
)
def test_raw_bytes_and_odd_content_types(app, path, raw, content_type):
    method = "GET" if path in GET_PATHS else "POST"
    call(app, method, path, data=raw, content_type=content_type or None)


@FAST
@given(
    path=st.sampled_from(POST_PATHS),
    prefix=st.sampled_from([b"", b'{"hook": "', b'{"feedback": [{"card": "']),
    junk=st.sampled_from(
        [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\\ud800", b"\xf4\x90\x80\x80", b"\x00"]
    ),
)
def test_invalid_utf8_and_lone_surrogates(app, path, prefix, junk):
    response = call(app, "POST", path, data=prefix + junk + b'"}', content_type="application/json")
    assert response.status_code == 400


@FEW
@given(
    path=st.sampled_from(POST_PATHS),
    depth=st.sampled_from([100, 1000, 1100, 5000, 100_000]),
    kind=st.sampled_from(["list", "dict"]),
    where=st.sampled_from(["top", "prefetch", "context", "extension"]),
)
def test_deeply_nested_documents(app, path, depth, kind, where):
    if where == "top":
        raw = ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)
        call(app, "POST", path, data=raw, content_type="application/json")
        return
    body = copy.deepcopy(REAL[SERVICES[0].id])
    deep = nested(min(depth, 900), kind)  # what json.dumps can still write; the raw cases go deeper
    if where == "prefetch":
        body["prefetch"]["patient"]["extension"] = [deep]
    elif where == "context":
        body["context"]["draftOrders"]["entry"][0]["resource"]["note"] = deep
    else:
        body["extension"] = {"deep": deep}
    post_json(app, path, body)


@FEW
@given(
    path=st.sampled_from(HOOK_PATHS),
    copies=st.sampled_from([2_000, 20_000]),
    field=st.sampled_from(["observations", "conditions", "selections", "long-string"]),
)
def test_huge_documents(app, path, copies, field):
    service_id = path.rsplit("/", 1)[1]
    body = copy.deepcopy(REAL[service_id])
    if field == "selections":
        body["context"]["selections"] = [f"MedicationRequest/{n}" for n in range(copies)]
    elif field == "long-string":
        body["context"]["userId"] = "P" * (copies * 100)
    else:
        bundle = body["prefetch"][field]
        bundle["entry"] = (bundle["entry"] or [{"resource": {"resourceType": "Condition", "id": "x"}}]) * (
            copies // 10
        )
    post_json(app, path, body)


offsets = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=23, minutes=59)),
        timezone(-timedelta(hours=23, minutes=59)),
        timezone(timedelta(hours=5, minutes=30)),
    ]
)
aware_times = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=offsets
)
calendar_ends = st.builds(
    lambda day, tz: day.replace(tzinfo=tz),
    st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)]),
    offsets,
)


@pytest.fixture
def backend_app(store_url):  # noqa: F811 (SQLite, and PostgreSQL when CDS_TEST_DATABASE_URL is set)
    """The app on each backend: PostgreSQL refuses what SQLite stores (NUL characters in text)."""
    app = create_app(Settings(database_url=store_url))
    yield app
    get_store(app).dispose()


@FAST
@given(
    path=st.sampled_from(FEEDBACK_PATHS),
    when=aware_times | calendar_ends | odd_text,
    card=odd_text,
    outcome=st.sampled_from(["accepted", "overridden", "dismissed", ""]),
    comment=odd_text,
)
def test_feedback_with_odd_times_and_text(backend_app, path, when, card, outcome, comment):
    app = backend_app
    item: dict[str, Any] = {
        "card": card,
        "outcome": outcome,
        "outcomeTimestamp": when.isoformat() if isinstance(when, datetime) else when,
    }
    if outcome == "overridden":
        item["overrideReason"] = {"userComment": comment, "reason": {"code": comment or "c", "display": card}}
    post_json(app, path, {"feedback": [item]})


@FAST
@given(
    header=st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=200)
    | st.builds(
        lambda h, p: "Bearer " + unsigned_token(h, p),
        st.dictionaries(
            known_keys | st.sampled_from(["alg", "kid", "jku", "typ", "crit", "b64", "x5u", "jwk"]),
            structured,
            max_size=5,
        ),
        st.dictionaries(st.sampled_from(["iss", "aud", "exp", "iat", "jti", "tenant", "nbf"]), structured),
    ),
    path=st.sampled_from(GET_PATHS[:1] + POST_PATHS),
)
def test_any_authorization_header_is_refused_with_json(authenticated_app, header, path):
    method = "GET" if path == "/cds-services" else "POST"
    response = call(authenticated_app, method, path, headers={"Authorization": header}, json={})
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


@FAST
@given(
    claims=st.dictionaries(
        st.sampled_from(["exp", "iat", "nbf", "jti", "aud", "iss", "tenant"]), structured, max_size=4
    ).filter(lambda c: isinstance(c.get("iss", ""), str))
)  # PyJWT will not sign a non-string iss
def test_validly_signed_tokens_with_odd_claims_are_answered_without_failing(authenticated_app, claims):
    token = Signer().token(f"{BASE_URL}/cds-services", claims=claims)
    response = call(authenticated_app, "GET", "/cds-services", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 401)
