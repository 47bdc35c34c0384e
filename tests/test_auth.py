"""Trusting CDS clients (CDS Hooks 2.0): signed JWTs, the replay cache, open mode, and no SSRF.

Each refusal has its own test that fails when its check is removed, and every test here ends with the
log check: no token it minted, no access token and no patient data in any log record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses

from cds_service import Settings, create_app
from cds_service.auth import OpenModeRefused, TrustedClientsError, load_trusted_clients
from cds_service.cli import main as cli_main
from cds_service.facts import utc_today
from cds_service.feedback_store import FeedbackStore, get_store
from cds_service.fhir_allowlist import FhirServerAllowlist
from cds_service.fixtures import hook_request, request_file, rolled_to
from cds_service.replay_cache import ReplayCache
from tests.auth_helpers import (
    BASE_URL,
    FHIR_BASE,
    ISSUER,
    MINTED,
    ClientsFile,
    Signer,
    claims_now,
    default_client,
    jwks,
    public_jwk,
    unsigned_token,
)
from tests.db_helpers import store_url  # noqa: F401 (fixture: SQLite, and PostgreSQL when configured)
from tests.log_checks import (
    ACCESS_TOKEN,
    MRN,
    PATIENT_IDS,
    assert_nothing_secret_logged,
    every_logger_at_debug,
    with_phi,
)

SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JWKS_URL = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
# A verbatim copy of ../shared/spec/sandbox/sandbox-jwks.json, the sandbox's published key set.
SANDBOX_JWKS_FILE = Path(__file__).resolve().parents[1] / "fhir_fixtures" / "sandbox-jwks.json"
ORDER_SELECT = "/cds-services/baricitinib-order-select"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_secret_in_any_log(caplog):
    """After every test here: no minted token (nor its signature), access token or PHI in any log record."""
    MINTED.clear()
    caplog.set_level(logging.DEBUG)
    yield
    signatures = [t.rsplit(".", 1)[-1] for t in MINTED if len(t.rsplit(".", 1)[-1]) > 8]
    assert_nothing_secret_logged(caplog.records, *MINTED, *signatures)


def make_app(tmp_path: Path, clients: ClientsFile | None = None, database_url: str | None = None, **settings):
    if clients is None:
        clients = ClientsFile().add(**default_client())
    values = {
        "database_url": database_url or f"sqlite:///{tmp_path / 'cds.sqlite3'}",
        "trusted_clients": clients.write(tmp_path),
        "fhir_read_timeout": 2.0,
        **settings,
    }
    return create_app(Settings(**values))


@pytest.fixture
def client(tmp_path):
    return make_app(tmp_path).test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def body_for(hook: str = "order-select", prefetch_keys: set[str] | None = None) -> dict:
    body = rolled_to(hook_request(hook, "sle-baseline", ["baricitinib-4mg"], prefetch_keys), utc_today())
    if prefetch_keys == set():
        body.pop("prefetch")
    return with_phi(body)


def refused(response, caplog, reason: str) -> None:
    """401 with the generic body, and one log line naming exactly ``reason``."""
    assert response.status_code == 401
    assert response.get_json() == {
        "code": "unauthorized",
        "message": "a valid bearer token from a trusted CDS client is required",
    }
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    lines = [
        r
        for r in caplog.records
        if r.name == "cds_service.auth" and r.getMessage().startswith("token refused")
    ]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert re.search(reason, lines[0].getMessage()), lines[0].getMessage()
    assert lines[0].fields["reason"] in lines[0].getMessage()


# --- accepted ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alg,kid", [("ES384", "k1"), ("ES256", "k256"), ("RS384", "rsa"), ("PS256", "rsa"), ("RS256", "rsa")]
)
def test_a_token_signed_by_a_trusted_client_is_accepted(client, caplog, alg, kid):
    token = Signer(alg=alg, kid=kid).token()
    response = client.get("/cds-services", headers=bearer(token))
    assert response.status_code == 200
    access = [r for r in caplog.records if r.name == "cds_service.access"]
    assert access[-1].fields["client"] == ISSUER


def test_hook_call_and_feedback_each_need_their_own_url_as_aud(client):
    hook = client.post(
        ORDER_SELECT, json=body_for(), headers=bearer(Signer().token(f"{BASE_URL}{ORDER_SELECT}"))
    )
    assert hook.status_code == 200
    card = hook.get_json()["cards"][0]["uuid"]
    feedback = {
        "feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-25T10:00:00Z"}]
    }
    url = f"{ORDER_SELECT}/feedback"
    assert (
        client.post(url, json=feedback, headers=bearer(Signer().token(f"{BASE_URL}{url}"))).status_code == 200
    )


def test_aud_may_be_a_list(client):
    token = Signer().token([f"{BASE_URL}/cds-services", "https://other.example"])
    assert client.get("/cds-services", headers=bearer(token)).status_code == 200


def test_exp_just_past_is_accepted_within_the_clock_skew(client):
    assert client.get("/cds-services", headers=bearer(Signer().token(exp_in=-10))).status_code == 200


def test_health_readiness_and_openapi_need_no_token(client):
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def readme_sandbox_entry() -> dict:
    """The trusted clients file shown in the README's "Connecting an EHR", as written there."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Connecting an EHR", 1)[1]
    block = section.split("```json", 1)[1].split("```", 1)[0]
    return json.loads(block)


SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"  # the one key of the sandbox's published set


def sandbox_token(path: str, kid: str = SANDBOX_KID) -> str:
    """A token shaped as the sandbox signs them (its README in ../shared/spec/sandbox/): header alg ES384,
    typ JWT, kid, jku its JWKS URL; claims iss, aud the URL called, exp = iat + 300, jti a UUID. Signed
    with the test ES384 key: only the sandbox holds the private key of its published set."""
    signer = Signer(alg="ES384", kid=kid, issuer=SANDBOX_ISSUER)
    return signer.token(f"{BASE_URL}{path}", headers={"typ": "JWT", "jku": SANDBOX_JWKS_URL})


def sandbox_app(tmp_path: Path, key_set: dict, **overrides):
    """The README's sandbox entry, verbatim, with ``key_set`` as its jwks_file; ``overrides`` change it."""
    entry = readme_sandbox_entry()["clients"][0] | overrides
    (tmp_path / entry["jwks_file"]).write_text(json.dumps(key_set), encoding="utf-8")
    return make_app(tmp_path, ClientsFile().add(**entry)).test_client()


def jwks_fetches(mock) -> list:
    """Requests to the sandbox's JWKS URL. The mock has no answer registered for it: a fetch fails."""
    return [c for c in mock.calls if c.request.url == SANDBOX_JWKS_URL]


def test_the_sandbox_published_key_set_loads_as_pinned_keys(tmp_path):
    real = json.loads(SANDBOX_JWKS_FILE.read_text(encoding="utf-8"))
    for pinned in ({"jwks_file": str(SANDBOX_JWKS_FILE)}, {"jwks": real}):
        clients = load_trusted_clients(ClientsFile().add(issuer=SANDBOX_ISSUER, **pinned).write(tmp_path))
        (client,) = clients[SANDBOX_ISSUER]
        assert client.keys == tuple(real["keys"]) and client.jwks_url is None
        assert [(k["kid"], k["kty"], k["crv"], k["alg"]) for k in client.keys] == [
            (SANDBOX_KID, "EC", "P-384", "ES384")
        ]


def test_a_sandbox_token_is_checked_against_the_pinned_real_key_set_without_a_fetch(
    tmp_path, caplog, fhir_server
):
    """The README's entry pinning the sandbox's real published keys. The token, shaped as the sandbox's and
    naming its jku, is signed with our test key, so the real key (picked by kid) must reject its signature:
    that reason proves the pinned real key was used. Had the jku been fetched, the fetch would have failed
    (no answer is registered) and the reason would say so."""
    real = json.loads(SANDBOX_JWKS_FILE.read_text(encoding="utf-8"))
    client = sandbox_app(tmp_path, real)
    refused(
        client.get("/cds-services", headers=bearer(sandbox_token("/cds-services"))),
        caplog,
        "the signature does not verify",
    )
    assert jwks_fetches(fhir_server.mock) == []


def test_the_sandbox_entry_works_as_written_in_the_readme_without_egress(tmp_path, fhir_server):
    """The README's entry with a test key pinned under the sandbox's kid (the one key we can sign with):
    discovery and the sandbox's real order-select request get in, and the jku is never fetched."""
    client = sandbox_app(tmp_path, jwks(public_jwk("ES384", SANDBOX_KID)))
    fhir_base = readme_sandbox_entry()["clients"][0]["fhir_servers"][0]
    fhir_server.serve_patient(fhir_base, "sle-1")
    body = request_file("order-select/sandbox-hydroxychloroquine") | {"fhirServer": fhir_base}
    discovery = client.get("/cds-services", headers=bearer(sandbox_token("/cds-services")))
    assert discovery.status_code == 200
    hook = client.post(ORDER_SELECT, json=body, headers=bearer(sandbox_token(ORDER_SELECT)))
    assert hook.status_code == 200, hook.get_json()
    assert any(c.request.url.startswith(f"{fhir_base}/Condition?") for c in fhir_server.mock.calls)
    assert jwks_fetches(fhir_server.mock) == []


def test_a_pinned_kid_is_used_whatever_jku_the_token_names(client, caplog):
    """Not on any allowlist, or listed but unreachable: a pinned kid needs neither."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        token = Signer().token(headers={"jku": "https://attacker.example/jwks.json"})
        assert client.get("/cds-services", headers=bearer(token)).status_code == 200
        forged = Signer(other_key=True).token(headers={"jku": "https://attacker.example/jwks.json"})
        refused(client.get("/cds-services", headers=bearer(forged)), caplog, "the signature does not verify")
        assert len(mock.calls) == 0


def test_an_unpinned_kid_with_a_jku_not_on_the_allowlist_is_refused_without_a_fetch(
    tmp_path, caplog, fhir_server
):
    real = json.loads(SANDBOX_JWKS_FILE.read_text(encoding="utf-8"))
    client = sandbox_app(tmp_path, real)
    refused(
        client.get("/cds-services", headers=bearer(sandbox_token("/cds-services", kid="rotated"))),
        caplog,
        "jku fp:[0-9a-f]{10} is not on this client's allowlist and kid fp:[0-9a-f]{10} is not among the "
        "client's pinned keys$",
    )
    assert jwks_fetches(fhir_server.mock) == []


def test_an_unpinned_kid_with_an_allowlisted_jku_is_fetched_from_it(tmp_path, caplog, fhir_server):
    """The sandbox rotating its key: a kid not pinned is looked up at the jku the entry lists."""
    real = json.loads(SANDBOX_JWKS_FILE.read_text(encoding="utf-8"))
    client = sandbox_app(tmp_path, real, jku=[SANDBOX_JWKS_URL])
    fhir_server.mock.get(SANDBOX_JWKS_URL, json=jwks(public_jwk("ES384", "rotated")))
    token = sandbox_token("/cds-services", kid="rotated")
    assert client.get("/cds-services", headers=bearer(token)).status_code == 200
    assert len(jwks_fetches(fhir_server.mock)) == 1
    token = sandbox_token("/cds-services", kid="rotated")
    assert client.get("/cds-services", headers=bearer(token)).status_code == 200
    assert len(jwks_fetches(fhir_server.mock)) == 1  # the fetched set is reused
    refused(  # a pinned kid is never looked up there, even when the jku is listed
        client.get("/cds-services", headers=bearer(sandbox_token("/cds-services"))),
        caplog,
        "the signature does not verify",
    )
    assert len(jwks_fetches(fhir_server.mock)) == 1


def test_a_rotated_key_is_picked_up_by_refetching_the_key_set(tmp_path):
    entry = {"issuer": ISSUER, "jwks_url": "https://ehr.example.org/jwks.json"}
    client = make_app(tmp_path, ClientsFile().add(**entry)).test_client()
    with responses.RequestsMock() as mock:
        mock.get("https://ehr.example.org/jwks.json", json=jwks(public_jwk("ES384", "old")))
        assert client.get("/cds-services", headers=bearer(Signer(kid="old").token())).status_code == 200
        mock.replace(
            responses.GET, "https://ehr.example.org/jwks.json", json=jwks(public_jwk("ES384", "new"))
        )
        assert client.get("/cds-services", headers=bearer(Signer(kid="new").token())).status_code == 200


def test_public_base_url_sets_the_expected_aud(tmp_path, caplog):
    client = make_app(tmp_path, public_base_url="https://cds.example.org/base/").test_client()
    ok = Signer().token("https://cds.example.org/base/cds-services")
    assert client.get("/cds-services", headers=bearer(ok)).status_code == 200
    internal = Signer().token(f"{BASE_URL}/cds-services")
    refused(
        client.get("/cds-services", headers=bearer(internal)),
        caplog,
        r"aud is not this endpoint: it names another origin than https://cds\.example\.org$",
    )


def test_the_tenant_claim_picks_the_client_entry(tmp_path, caplog, fhir_server):
    clients = ClientsFile().add(**default_client(tenant="north", fhir_servers=["https://north.example/fhir"]))
    clients.add(**default_client(tenant="south", fhir_servers=["https://south.example/fhir"]))
    client = make_app(tmp_path, clients).test_client()
    fhir_server.serve_patient("https://south.example/fhir", "sle-baseline")
    body = body_for(prefetch_keys={"patient", "observations", "immunizations", "medications", "encounters"})
    body["fhirServer"] = "https://south.example/fhir"
    token = Signer().token(f"{BASE_URL}{ORDER_SELECT}", claims={"tenant": "south"})
    assert client.post(ORDER_SELECT, json=body, headers=bearer(token)).status_code == 200
    assert [c.path_url.split("?")[0] for c in fhir_server.calls] == ["/fhir/Condition"]
    token = Signer().token(f"{BASE_URL}/cds-services", claims={"tenant": "west"})
    refused(
        client.get("/cds-services", headers=bearer(token)), caplog, "tenant fp:[0-9a-f]{10} is not configured"
    )


# --- refused -------------------------------------------------------------------------------------


def test_no_token_is_refused(client, caplog):
    refused(client.get("/cds-services"), caplog, "no Authorization header")


def test_a_hook_call_without_a_token_is_refused_before_the_body_is_read(client, caplog):
    refused(client.post(ORDER_SELECT, json=body_for()), caplog, "no Authorization header")


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not.a.jwt", "Bearer " + "a" * 20000]
)
def test_a_malformed_authorization_header_is_refused(client, caplog, header):
    refused(
        client.get("/cds-services", headers={"Authorization": header}), caplog, r"Authorization|JWT|longer"
    )


def test_a_forged_signature_is_refused(client, caplog):
    forged = Signer(other_key=True).token()  # right kid, wrong private key
    refused(client.get("/cds-services", headers=bearer(forged)), caplog, "the signature does not verify")


def test_a_token_whose_claims_were_changed_after_signing_is_refused(client, caplog):
    header, _, signature = Signer().token(f"{BASE_URL}/elsewhere").split(".")
    payload = unsigned_token({}, claims_now(f"{BASE_URL}/cds-services")).split(".")[1]
    refused(
        client.get("/cds-services", headers=bearer(f"{header}.{payload}.{signature}")),
        caplog,
        "the signature does not verify",
    )


def test_alg_none_is_refused(client, caplog):
    token = unsigned_token({"alg": "none", "typ": "JWT", "kid": "k1"}, claims_now(f"{BASE_URL}/cds-services"))
    refused(client.get("/cds-services", headers=bearer(token)), caplog, "alg 'none' is not allowed")


def test_hs256_signed_with_the_public_key_is_refused(client, caplog):
    """The classic confusion: an HMAC keyed with the client's public key, which anyone can read."""
    public = json.dumps(public_jwk("ES384", "k1")).encode()
    header = {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    unsigned = unsigned_token(header, claims_now(f"{BASE_URL}/cds-services"))
    signing_input = unsigned.rsplit(".", 1)[0].encode()
    token = unsigned_token(
        header,
        claims_now(f"{BASE_URL}/cds-services"),
        hmac.new(public, signing_input, hashlib.sha256).digest(),
    )
    refused(client.get("/cds-services", headers=bearer(token)), caplog, "alg 'HS256' is not allowed")


def test_a_token_signed_with_one_algorithm_but_claiming_another_is_refused(client, caplog):
    """kid 'k1' is an ES384 key; a token claiming ES256 for it must not be verified with it."""
    token = Signer(alg="ES256", kid="k1").token()
    refused(client.get("/cds-services", headers=bearer(token)), caplog, "no key of the client's JWK Set fits")


def test_wrong_audience_is_refused(client, caplog):
    token = Signer().token(f"{BASE_URL}/cds-services/baricitinib-order-sign")
    refused(
        client.get("/cds-services", headers=bearer(token)),
        caplog,
        r"aud names this endpoint's origin \(http://localhost\) but not the path called",
    )


def test_a_token_for_another_host_is_refused(client, caplog):
    token = Signer().token("https://attacker.example/cds-services")
    refused(
        client.get("/cds-services", headers=bearer(token)),
        caplog,
        "aud is not this endpoint: it names another origin than http://localhost",
    )


def test_an_expired_token_is_refused(client, caplog):
    token = Signer().token(exp_in=-120, iat_in=-420)
    refused(client.get("/cds-services", headers=bearer(token)), caplog, r"the token has expired \(exp\)")


def test_a_token_issued_in_the_future_is_refused(client, caplog):
    token = Signer().token(iat_in=600, exp_in=900)
    refused(client.get("/cds-services", headers=bearer(token)), caplog, "not valid yet")


def test_a_token_living_too_long_is_refused(client, caplog):
    token = Signer().token(exp_in=86_400)
    refused(
        client.get("/cds-services", headers=bearer(token)), caplog, "exp is more than 3600 s in the future"
    )


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "aud"])
def test_a_token_without_a_required_claim_is_refused(client, caplog, claim):
    token = Signer().token(drop=(claim,))
    refused(client.get("/cds-services", headers=bearer(token)), caplog, f"the {claim} claim is missing")


@pytest.mark.parametrize("kid", [None, ""], ids=["absent", "empty"])
def test_a_token_without_kid_is_refused_even_when_the_client_has_one_key(tmp_path, caplog, kid):
    """CDS Hooks 2.0 requires kid; a client with a single pinned key used to take a token without one."""
    client = make_app(tmp_path, ClientsFile().add(issuer=ISSUER, jwks=jwks(public_jwk("ES384", "k1"))))
    token = Signer().token(headers={"kid": kid})
    refused(
        client.test_client().get("/cds-services", headers=bearer(token)),
        caplog,
        r"the token header has no kid \(CDS Hooks 2.0 requires one\)",
    )


def test_a_kid_that_is_not_a_string_is_refused(client, caplog):
    token = unsigned_token({"alg": "ES384", "typ": "JWT", "kid": 7}, claims_now(f"{BASE_URL}/cds-services"))
    refused(client.get("/cds-services", headers=bearer(token)), caplog, "not a well-formed JWT")


@pytest.mark.parametrize(
    ("claim", "value", "kind"),
    [
        ("exp", lambda now: str(now + 60), "a string"),
        ("iat", lambda now: str(now), "a string"),
        ("nbf", lambda now: str(now), "a string"),
        ("exp", lambda now: True, "a boolean"),
        ("iat", lambda now: None, "null"),
    ],
    ids=["exp-numeric-string", "iat-numeric-string", "nbf-numeric-string", "exp-boolean", "iat-null"],
)
def test_exp_iat_and_nbf_must_be_json_numbers(client, caplog, claim, value, kind):
    now = int(time.time())
    token = Signer().token(claims={claim: value(now)})
    refused(
        client.get("/cds-services", headers=bearer(token)),
        caplog,
        f"{claim} must be a JSON number of seconds, not {kind}",
    )


def test_exp_and_iat_may_be_fractional_numbers(client):
    now = time.time()
    token = Signer().token(claims={"exp": now + 300.5, "iat": now - 0.25, "nbf": now - 0.25})
    assert client.get("/cds-services", headers=bearer(token)).status_code == 200


def test_an_unknown_issuer_is_refused(client, caplog):
    token = Signer(issuer="https://attacker.example").token()
    response = client.get("/cds-services", headers=bearer(token))
    refused(response, caplog, "^token refused: unknown iss fp:[0-9a-f]{10}$")


def test_an_issuer_differing_only_by_a_trailing_slash_is_named_as_the_configured_one(client, caplog):
    token = Signer(issuer=ISSUER.upper() + "/").token()
    refused(
        client.get("/cds-services", headers=bearer(token)),
        caplog,
        f"unknown iss fp:[0-9a-f]{{10}} \\(differs from the configured {re.escape(ISSUER)} only in case",
    )


def test_an_unknown_kid_is_refused(client, caplog):
    refused(
        client.get("/cds-services", headers=bearer(Signer(kid="nope").token())),
        caplog,
        "kid fp:[0-9a-f]{10} is not among the client's pinned keys and the token names no jku",
    )


def test_a_replayed_jti_is_refused(client, caplog):
    token = Signer().token()
    assert client.get("/cds-services", headers=bearer(token)).status_code == 200
    refused(client.get("/cds-services", headers=bearer(token)), caplog, r"jti was already used \(replay\)")


def test_a_new_token_reusing_a_jti_is_refused(client, caplog):
    jti = str(uuid.uuid4())
    assert client.get("/cds-services", headers=bearer(Signer().token(jti=jti))).status_code == 200
    refused(client.get("/cds-services", headers=bearer(Signer().token(jti=jti))), caplog, "replay")


def test_a_jku_not_on_the_allowlist_is_refused_and_never_fetched(tmp_path, caplog):
    entry = {
        "issuer": ISSUER,
        "jwks_url": "https://ehr.example.org/jwks.json",
        "jku": ["https://ehr.example.org/jwks.json"],
    }
    client = make_app(tmp_path, ClientsFile().add(**entry)).test_client()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get("https://attacker.example/jwks.json", json=jwks(public_jwk("ES384", "k1")))
        token = Signer().token(headers={"jku": "https://attacker.example/jwks.json"})
        refused(
            client.get("/cds-services", headers=bearer(token)),
            caplog,
            "jku fp:[0-9a-f]{10} is not on this client's allowlist$",
        )
        assert len(mock.calls) == 0


def test_an_unreachable_key_set_is_refused(tmp_path, caplog):
    client = make_app(
        tmp_path, ClientsFile().add(issuer=ISSUER, jwks_url="https://ehr.example.org/jwks.json")
    ).test_client()
    with responses.RequestsMock() as mock:
        mock.get("https://ehr.example.org/jwks.json", status=503)
        refused(
            client.get("/cds-services", headers=bearer(Signer().token())),
            caplog,
            "the JWK Set at https://ehr.example.org/jwks.json answered HTTP 503",
        )


def test_a_weak_rsa_key_is_refused(tmp_path, caplog):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk = RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True) | {"kid": "weak", "alg": "RS256"}
    client = make_app(tmp_path, ClientsFile().add(issuer=ISSUER, jwks={"keys": [jwk]})).test_client()
    import warnings

    import jwt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns about the short key when signing, as it should
        token = jwt.encode(
            claims_now(f"{BASE_URL}/cds-services"), weak, algorithm="RS256", headers={"kid": "weak"}
        )
    MINTED.append(token)
    refused(client.get("/cds-services", headers=bearer(token)), caplog, "the key does not fit")


def test_every_method_and_unknown_path_needs_a_token(client, caplog):
    refused(client.get("/nowhere"), caplog, "no Authorization header")


# --- what the log says about caller-chosen values ------------------------------------------------

# A value an EHR might put in a claim by mistake, carrying a patient id and an MRN (log_checks markers).
HOSTILE = f"https://ehr.example.org/fhir/Patient/{PATIENT_IDS[0]}?identifier={MRN}"


def test_no_caller_chosen_claim_or_header_value_reaches_any_log_at_debug(tmp_path, caplog):
    """Every logger at DEBUG (SQLAlchemy's statement log included), each check failed by a value carrying
    a patient id: the log says which check failed and a keyed fingerprint, never the value."""
    with every_logger_at_debug():
        clients = ClientsFile().add(**default_client())
        clients.add(**default_client(issuer="https://tenants.example", tenant="north"))
        client = make_app(tmp_path, clients).test_client()
        here = f"{BASE_URL}/cds-services"
        tokens = {
            "unknown iss": Signer(issuer=HOSTILE).token(here),
            "unknown iss again": Signer(issuer=HOSTILE).token(here),
            "tenant": Signer(issuer="https://tenants.example").token(here, claims={"tenant": HOSTILE}),
            "kid": Signer(kid=HOSTILE).token(here),
            "jku": Signer(kid="unpinned").token(here, headers={"jku": HOSTILE}),
            "aud": Signer().token(HOSTILE),
            "aud list": Signer().token([HOSTILE, HOSTILE + "/2"]),
            "alg": unsigned_token({"alg": HOSTILE, "kid": "k1"}, claims_now(here)),
            "exp": Signer().token(here, claims={"exp": HOSTILE}),
        }
        for what, token in tokens.items():
            assert client.get("/cds-services", headers=bearer(token)).status_code == 401, what
        accepted = Signer().token(here, jti=HOSTILE, claims={"sub": HOSTILE})
        assert client.get("/cds-services", headers=bearer(accepted)).status_code == 200  # jti written
        assert client.get("/cds-services", headers=bearer(accepted)).status_code == 401  # and replayed
        assert client.get(f"/fhir/Patient/{PATIENT_IDS[0]}?identifier={MRN}").status_code == 401
    assert_nothing_secret_logged(caplog.records, HOSTILE)
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)  # the statement log was on
    reasons = [r.fields["reason"] for r in caplog.records if "reason" in getattr(r, "fields", {})]
    assert reasons[0] == reasons[1]  # one value, one fingerprint: a repeated bad iss can be seen as such
    unkeyed = hashlib.sha256(HOSTILE.encode()).hexdigest()[:10]
    assert not any(unkeyed in reason for reason in reasons)  # keyed: guessing values and hashing them fails


# --- the replay cache across workers and instances -----------------------------------------------


@pytest.fixture
def stores():
    """Engines a test opened, closed afterwards (a PostgreSQL schema cannot be dropped under them)."""
    opened: list[FeedbackStore] = []
    yield opened
    for store in opened:
        store.dispose()


def test_two_instances_sharing_a_database_accept_a_token_once(tmp_path, store_url, caplog, stores):  # noqa: F811
    apps = [make_app(tmp_path, database_url=store_url)]
    (tmp_path / "second").mkdir()
    apps.append(make_app(tmp_path / "second", database_url=store_url))
    stores.extend(get_store(app) for app in apps)
    first, second = (app.test_client() for app in apps)
    token = Signer().token()
    assert first.get("/cds-services", headers=bearer(token)).status_code == 200
    refused(second.get("/cds-services", headers=bearer(token)), caplog, "replay")
    other = Signer().token()
    assert second.get("/cds-services", headers=bearer(other)).status_code == 200
    assert first.get("/cds-services", headers=bearer(other)).status_code == 401


def test_concurrent_presentations_of_one_token_let_exactly_one_in(store_url, stores):  # noqa: F811
    stores.extend(FeedbackStore(store_url) for _ in range(2))
    caches = [ReplayCache(store.engine) for store in stores]
    expires = datetime.now(UTC) + timedelta(minutes=5)
    results: list[bool] = []
    start = threading.Barrier(8)

    def present(n: int) -> None:
        start.wait()
        results.append(caches[n % 2].claim(ISSUER, "same-jti", expires))

    threads = [threading.Thread(target=present, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_expired_replay_entries_are_purged(store_url, stores):  # noqa: F811
    stores.append(FeedbackStore(store_url))
    cache = ReplayCache(stores[0].engine)
    now = datetime.now(UTC)
    assert cache.claim(ISSUER, "old", now - timedelta(seconds=1))
    assert cache.claim(ISSUER, "live", now + timedelta(minutes=5))
    assert cache.claim("https://other.example", "live", now + timedelta(minutes=5))  # jti is per issuer
    assert cache.purge(now) == 1
    assert not cache.claim(ISSUER, "live", now + timedelta(minutes=5))


# --- the trusted clients file --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"clients": []}', "clients: List should have at least 1 item"),
        ('{"clients": [{"issuer": "https://a.example"}]}', "give the client's keys"),
        (
            '{"clients": [{"issuer": "https://a.example", "jwks_url": "http://a.example/jwks"}]}',
            "must be https",
        ),
        (
            '{"clients": [{"issuer": "https://a.example", "jku": ["https://a/j"], "jwks": {"keys": []}, '
            '"jwks_url": "https://a.example/j"}]}',
            "at most one of",
        ),
        (
            '{"clients": [{"issuer": "https://a.example", "jwks": {"keys": [{"kty": "EC"}]}}]}',
            "not a usable JWK Set",
        ),
        (
            '{"clients": [{"issuer": "https://a.example", "jku": ["https://a.example/j"], "fhir_servers": ["ftp://x"]}]}',
            "fhir_servers: 'ftp://x' is not an http",
        ),
        (
            '{"clients": [{"issuer": "https://a.example", "jku": ["https://a.example/j"]}, '
            '{"issuer": "https://a.example", "jku": ["https://a.example/j"]}]}',
            "listed twice",
        ),
        ('{"clients": [{"issuer": "https://a.example", "jwks_file": "missing.json"}]}', "jwks_file"),
    ],
    ids=[
        "not-json",
        "no-clients",
        "no-keys",
        "http-jwks-url",
        "two-key-sources",
        "bad-jwks",
        "bad-fhir-server",
        "duplicate",
        "missing-jwks-file",
    ],
)
def test_a_bad_trusted_clients_file_stops_the_service_naming_the_problem(tmp_path, content, message):
    path = tmp_path / "clients.json"
    path.write_text(content)
    with pytest.raises(TrustedClientsError, match=re.escape(message)) as error:
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db'}", trusted_clients=path))
    assert str(path) in str(error.value)


def test_jwks_file_is_read_relative_to_the_clients_file(tmp_path):
    (tmp_path / "keys.json").write_text(json.dumps(jwks(public_jwk("ES384", "k1"))))
    client = make_app(tmp_path, ClientsFile().add(issuer=ISSUER, jwks_file="keys.json")).test_client()
    assert client.get("/cds-services", headers=bearer(Signer().token())).status_code == 200


# --- open mode -----------------------------------------------------------------------------------


def test_open_mode_on_loopback_says_so_at_start_up(tmp_path, caplog):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db'}"))
    assert app.test_client().get("/cds-services").status_code == 200
    assert any("WITHOUT authentication, loopback only" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "cds.example.org"])
def test_open_mode_refuses_to_start_on_a_public_address(tmp_path, host):
    with pytest.raises(OpenModeRefused, match="CDS_ALLOW_UNAUTHENTICATED"):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db'}", host=host))


def test_open_mode_on_a_public_address_needs_the_explicit_switch(tmp_path, caplog):
    create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'db'}", host="0.0.0.0", allow_unauthenticated=True)
    )
    assert any("WITHOUT authentication on 0.0.0.0" in r.getMessage() for r in caplog.records)


def test_serve_refuses_a_public_address_without_trusted_clients(monkeypatch, capsys):
    monkeypatch.delenv("CDS_TRUSTED_CLIENTS", raising=False)
    monkeypatch.delenv("CDS_ALLOW_UNAUTHENTICATED", raising=False)
    monkeypatch.setattr("os.execv", lambda *a: pytest.fail("gunicorn must not start"))
    assert cli_main(["serve", "--host", "0.0.0.0"]) == 2
    assert "not starting" in capsys.readouterr().err


def test_serve_starts_on_loopback_and_on_a_public_address_with_trusted_clients(tmp_path, monkeypatch):
    started: list[list[str]] = []
    monkeypatch.setattr("os.execv", lambda path, argv: started.append(argv))
    # serve names the workers' metrics folder in the environment gunicorn inherits; set then deleted here so
    # that monkeypatch undoes it (it records nothing for a variable that was not set)
    for variable in ("PROMETHEUS_MULTIPROC_DIR", "CDS_METRICS_DIR"):
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
    monkeypatch.delenv("CDS_ALLOW_UNAUTHENTICATED", raising=False)
    monkeypatch.delenv("CDS_TRUSTED_CLIENTS", raising=False)
    monkeypatch.setenv("CDS_HOST", "127.0.0.1")
    assert cli_main(["serve", "--host", "127.0.0.1", "--port", "8099"]) == 0
    monkeypatch.setenv("CDS_TRUSTED_CLIENTS", str(ClientsFile().add(**default_client()).write(tmp_path)))
    assert cli_main(["serve", "--host", "0.0.0.0"]) == 0
    assert [argv[argv.index("--bind") + 1] for argv in started] == ["127.0.0.1:8099", "0.0.0.0:8080"]
    assert Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).is_dir()
    assert all(argv[argv.index("--config") + 1] == "python:cds_service.server" for argv in started)


# --- SSRF: fhirServer only from the client's allowlist -------------------------------------------


def quality_detail(response) -> str:
    cards = [c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "data-quality"]
    assert len(cards) == 1, response.get_json()
    return cards[0]["detail"]


def hook_call(client, body):
    return client.post(ORDER_SELECT, json=body, headers=bearer(Signer().token(f"{BASE_URL}{ORDER_SELECT}")))


@pytest.mark.parametrize(
    "server",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:8090/fhir",
        "https://ehr.example.org.attacker.example/fhir",
        "https://ehr.example.org/other",
        "https://ehr.example.org:8443/fhir",
        "https://user@ehr.example.org/fhir",
    ],
    ids=["metadata", "loopback", "suffix-host", "other-path", "other-port", "userinfo"],
)
def test_a_fhir_server_not_on_the_clients_allowlist_is_never_contacted(client, fhir_server, server):
    fhir_server.serve_patient(server.split("/latest")[0], "sle-baseline")
    body = body_for(prefetch_keys={"patient", "observations", "immunizations", "medications", "encounters"})
    body |= {
        "fhirServer": server,
        "fhirAuthorization": {
            "access_token": ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds",
        },
    }
    response = hook_call(client, body)
    assert response.status_code == 200
    assert "**Unavailable: conditions**: fhirServer is not on this client's allowlist" in quality_detail(
        response
    )
    assert fhir_server.calls == []


def test_without_patient_and_an_unlisted_fhir_server_the_answer_is_412(client, fhir_server):
    fhir_server.serve_patient("http://10.0.0.5/fhir", "sle-baseline")
    body = body_for(prefetch_keys={"conditions", "observations", "immunizations", "medications", "encounters"})
    body["fhirServer"] = "http://10.0.0.5/fhir"
    response = hook_call(client, body)
    assert response.status_code == 412
    assert "fhirServer is not on this client's allowlist" in response.get_json()["issue"][0]["diagnostics"]
    assert fhir_server.calls == []


def test_a_fhir_server_on_the_clients_allowlist_is_used(client, fhir_server):
    fhir_server.serve_patient(f"{FHIR_BASE}/r4", "sle-baseline")  # below the listed base URL
    body = body_for(prefetch_keys={"patient", "observations", "immunizations", "medications", "encounters"})
    body["fhirServer"] = f"{FHIR_BASE}/r4"
    assert hook_call(client, body).status_code == 200
    assert [c.path_url.split("?")[0] for c in fhir_server.calls] == ["/fhir/r4/Condition"]


def test_open_mode_allows_loopback_fhir_servers_only_by_default(tmp_path, fhir_server):
    client = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db'}")).test_client()
    body = body_for(prefetch_keys={"patient", "observations", "immunizations", "medications", "encounters"})
    fhir_server.serve_patient("http://10.0.0.5/fhir", "sle-baseline")
    response = client.post(ORDER_SELECT, json=body | {"fhirServer": "http://10.0.0.5/fhir"})
    assert "fhirServer is not on this client's allowlist" in quality_detail(response)
    assert fhir_server.calls == []
    fhir_server.serve_patient("http://localhost:9999/fhir", "sle-baseline")
    response = client.post(ORDER_SELECT, json=body | {"fhirServer": "http://localhost:9999/fhir"})
    assert response.status_code == 200 and len(fhir_server.calls) == 1


def test_open_mode_uses_cds_fhir_servers_when_set(tmp_path, fhir_server):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db'}", fhir_servers="http://10.0.0.5/fhir, http://10.0.0.6:*"
    )
    client = create_app(settings).test_client()
    body = body_for(prefetch_keys={"patient", "observations", "immunizations", "medications", "encounters"})
    for server in ("http://10.0.0.5/fhir", "http://10.0.0.6:8080/base", "http://127.0.0.1:8090/fhir"):
        fhir_server.serve_patient(server, "sle-baseline")
    for server, contacted in [
        ("http://10.0.0.5/fhir", 1),
        ("http://10.0.0.6:8080/base", 2),
        ("http://127.0.0.1:8090/fhir", 2),
    ]:
        client.post(ORDER_SELECT, json=body | {"fhirServer": server})
        assert len(fhir_server.calls) == contacted, server


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://ehr.example.org/fhir", True),
        ("HTTPS://EHR.example.org:443/fhir/", True),
        ("https://ehr.example.org/fhir/r4", True),
        ("https://ehr.example.org/fhirx", False),
        ("http://ehr.example.org/fhir", False),
        ("https://ehr.example.org", False),
        ("https://ehr.example.org:444/fhir", False),
        ("https://ehr.example.org@evil.example/fhir", False),
        ("https://ehr.example.org:99999/fhir", False),
        ("not a url", False),
    ],
)
def test_allowlist_matching(url, allowed):
    assert FhirServerAllowlist.of(["https://ehr.example.org/fhir"]).allows(url) is allowed


def test_an_unreachable_replay_cache_is_503_not_a_crash_and_lets_nothing_in(tmp_path, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def down(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    app = make_app(tmp_path)
    monkeypatch.setattr(app.extensions["cds_auth"].replay, "claim", down)
    response = app.test_client().get("/cds-services", headers=bearer(Signer().token()))
    assert response.status_code == 503 and response.get_json()["code"] == "service-unavailable"
    assert response.headers["Retry-After"] == "5"
