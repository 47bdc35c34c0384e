"""Who may call: CDS Hooks 2.0 "Trusting CDS Clients", a JWT signed by the EHR on every request.

Trusted clients are listed in the JSON file named by ``CDS_TRUSTED_CLIENTS``::

    {"clients": [{"issuer": "https://sandbox.cds-hooks.org",
                  "jwks_url": "https://sandbox.cds-hooks.org/.well-known/jwks.json",
                  "jku": ["https://sandbox.cds-hooks.org/.well-known/jwks.json"],
                  "fhir_servers": ["https://ehr.example.org/fhir"],
                  "tenant": "optional"}]}

with the client's public keys given in one of three ways: ``jwks`` (the JWK Set inline), ``jwks_file``
(a path, relative to the clients file) or ``jwks_url`` (fetched with ``requests`` and reused for
``CDS_JWKS_CACHE_SECONDS``). A token's ``jku`` header is followed only when it is on that client's ``jku``
list; a client may also give only ``jku``. A token whose ``kid`` is among the client's pinned keys
(``jwks``, ``jwks_file``) is checked against them whatever ``jku`` it names, with no fetch: that is how a
hospital without internet egress trusts an EHR, the CDS Hooks sandbox included. Only a ``kid`` that is
not pinned sends the service to the token's ``jku`` (when listed) or to ``jwks_url``. Several entries may
share an issuer when each names a different ``tenant`` (the token's ``tenant`` claim picks one; an entry
without a tenant takes the rest).

A request is let in when its ``Authorization: Bearer`` token

- is signed with ES256/384/512, RS256/384/512 or PS256/384/512 (never ``none``, never HMAC) by a key of
  the client's JWK Set, chosen by the header's ``kid`` (required, as CDS Hooks 2.0 requires it), whose
  type and ``alg`` fit the token's ``alg``;
- has ``iss`` a configured client, ``aud`` the URL called (``CDS_PUBLIC_BASE_URL`` plus the path behind
  a proxy, else the request's own URL), ``exp`` not passed and ``iat`` not in the future (both JSON
  numbers, with ``CDS_JWT_LEEWAY`` seconds of skew), ``exp`` no further away than ``CDS_JWT_MAX_LIFETIME``;
- carries a ``jti`` not seen before (the replay cache, shared through the database).

Anything else is 401 with a short generic body, and one log line that names exactly what failed,
never the token. A value the caller chose (an unknown ``iss``, a ``kid``, ``jku``, ``aud`` or ``tenant``)
may carry anything, a patient id included, so the log never shows it: it says which check failed and gives
the value's fingerprint (``fp:`` and a keyed hash, equal for equal values within one run of the service).
``/healthz``, ``/readyz``, ``/openapi.json``, ``/metrics`` and CORS preflights need no token.

Without trusted clients the service is open: allowed only on a loopback address unless
``CDS_ALLOW_UNAUTHENTICATED=1``, and said so at start-up.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import orjson
import requests
from flask import Flask, Response, current_app, g, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.exc import SQLAlchemyError

from .fhir_allowlist import AllowlistError, FhirServerAllowlist
from .replay_cache import MAX_JTI_LENGTH, ReplayCache, expiry
from .settings import Settings

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
# Every JWS alg registered with IANA: a refused alg from this list is named in the log, any other is not.
_REGISTERED_ALGORITHMS = frozenset(
    {*ALLOWED_ALGORITHMS, "none", "HS256", "HS384", "HS512", "EdDSA", "ES256K", "Ed25519", "Ed448"}
)
_NUMERIC_DATES = ("exp", "iat", "nbf")
# Made at start-up (before gunicorn forks, so shared by the workers): a fingerprint cannot be reversed by
# hashing guesses, and repeats for a repeated value until the service restarts.
_FINGERPRINT_KEY = secrets.token_bytes(32)
_KEY_TYPE = {"E": "EC", "R": "RSA", "P": "RSA"}
EXEMPT_ENDPOINTS = frozenset({"cds.healthz", "cds.readyz", "cds.openapi_document", "cds.metrics"})
UNAUTHORIZED = {
    "code": "unauthorized",
    "message": "a valid bearer token from a trusted CDS client is required",
}
UNAVAILABLE = {"code": "service-unavailable", "message": "tokens cannot be checked right now; retry shortly"}
MAX_TOKEN_BYTES = 16 * 1024
_JWKS_MAX_BYTES = 512 * 1024
_JWKS_TIMEOUT = (3.05, 5.0)
_REFETCH_COOLDOWN_SECONDS = 30.0
_EXTENSION_KEY = "cds_auth"


class TrustedClientsError(Exception):
    """The trusted clients file cannot be used; the message names the file and what is wrong."""


class OpenModeRefused(Exception):
    """No trusted clients, and the service would listen on a non-loopback address."""


class AuthFailure(Exception):
    """Why a token was refused: logged, never sent to the caller."""

    def __init__(self, reason: str, issuer: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.issuer = issuer


# --- the trusted clients file --------------------------------------------------------------------


class _ClientEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    issuer: str = Field(min_length=1)
    jwks: dict[str, Any] | None = None
    jwks_file: Path | None = None
    jwks_url: str | None = None
    jku: list[str] = Field(default_factory=list)
    fhir_servers: list[str] = Field(default_factory=list)
    tenant: str | None = None

    @field_validator("jwks_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        return None if value is None else _key_url(value)

    @field_validator("jku")
    @classmethod
    def _https_urls(cls, value: list[str]) -> list[str]:
        return [_key_url(v) for v in value]

    @model_validator(mode="after")
    def _one_key_source(self) -> _ClientEntry:
        sources = [s for s in (self.jwks, self.jwks_file, self.jwks_url) if s is not None]
        if len(sources) > 1:
            raise ValueError("give at most one of jwks, jwks_file and jwks_url")
        if not sources and not self.jku:
            raise ValueError("give the client's keys: jwks, jwks_file, jwks_url or a jku allowlist")
        return self


class _ClientsFile(BaseModel):
    model_config = ConfigDict(extra="allow")

    clients: list[_ClientEntry] = Field(min_length=1)


@dataclass(frozen=True)
class TrustedClient:
    issuer: str
    tenant: str | None
    keys: tuple[dict[str, Any], ...] | None  # inline or from jwks_file
    jwks_url: str | None
    jku: frozenset[str]
    fhir_servers: FhirServerAllowlist


def load_trusted_clients(path: Path) -> dict[str, list[TrustedClient]]:
    """The clients of the file, by issuer. Raises ``TrustedClientsError`` naming the file and the problem."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        parsed = _ClientsFile.model_validate(raw)
    except OSError as exc:
        raise TrustedClientsError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except ValueError as exc:  # JSONDecodeError and ValidationError
        raise TrustedClientsError(f"{path}: {_first_problem(exc)}") from None

    clients: dict[str, list[TrustedClient]] = {}
    for number, entry in enumerate(parsed.clients):
        where = f"{path}: clients[{number}] ({entry.issuer})"
        keys: tuple[dict[str, Any], ...] | None = None
        if entry.jwks is not None:
            keys = _checked_keys(entry.jwks, where)
        elif entry.jwks_file is not None:
            key_file = (
                entry.jwks_file if entry.jwks_file.is_absolute() else Path(path).parent / entry.jwks_file
            )
            try:
                keys = _checked_keys(json.loads(key_file.read_text(encoding="utf-8")), f"{where}: {key_file}")
            except (OSError, ValueError) as exc:
                raise TrustedClientsError(
                    f"{where}: jwks_file {key_file}: {type(exc).__name__}: {exc}"
                ) from None
        try:
            fhir_servers = FhirServerAllowlist.of(entry.fhir_servers)
        except AllowlistError as exc:
            raise TrustedClientsError(f"{where}: fhir_servers: {exc}") from None
        same_issuer = clients.setdefault(entry.issuer, [])
        if any(c.tenant == entry.tenant for c in same_issuer):
            raise TrustedClientsError(f"{where}: issuer and tenant {entry.tenant!r} are listed twice")
        same_issuer.append(
            TrustedClient(
                entry.issuer, entry.tenant, keys, entry.jwks_url, frozenset(entry.jku), fhir_servers
            )
        )
    return clients


def _checked_keys(jwks: Any, where: str) -> tuple[dict[str, Any], ...]:
    try:
        jwt.PyJWKSet.from_dict(jwks)
    except (
        jwt.PyJWKSetError,
        jwt.PyJWKError,
        jwt.InvalidKeyError,
        AttributeError,
        TypeError,
        KeyError,
    ) as exc:
        raise TrustedClientsError(f"{where}: not a usable JWK Set ({exc})") from None
    return tuple(k for k in jwks["keys"] if isinstance(k, dict))


def _key_url(value: str) -> str:
    """Key sets come over https; plain http only from this machine (tests, local demos)."""
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return value
    raise ValueError(f"{value!r}: key set URLs must be https (http only on loopback)")


def _first_problem(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors(include_url=False)[0]
        return f"{'.'.join(str(p) for p in error['loc']) or 'file'}: {error['msg']}"
    return f"not JSON ({exc})"


# --- key sets fetched by URL ---------------------------------------------------------------------


class JwksFetcher:
    """JWK Sets by URL, each kept ``lifespan`` seconds. A kid not in the set triggers one refetch, at
    most every 30 s per URL, so key rotation is picked up without letting random kids cause a fetch each."""

    def __init__(self, session: requests.Session, lifespan: float):
        self.session = session
        self.lifespan = lifespan
        self._cache: dict[str, tuple[float, tuple[dict[str, Any], ...]]] = {}
        self._last_refresh: dict[str, float] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def keys(self, url: str, *, refresh: bool = False) -> tuple[dict[str, Any], ...]:
        """The keys at ``url``; ``refresh`` (for an unknown kid) refetches, at most once in 30 s."""
        with self._guard:
            lock = self._locks.setdefault(url, threading.Lock())
        with lock:
            cached = self._cache.get(url)
            now = time.monotonic()
            if cached is not None and now - cached[0] < self.lifespan:
                if (
                    not refresh
                    or now - self._last_refresh.get(url, -_REFETCH_COOLDOWN_SECONDS)
                    < _REFETCH_COOLDOWN_SECONDS
                ):
                    return cached[1]
            if refresh:
                self._last_refresh[url] = now
            keys = self._fetch(url)
            self._cache[url] = (time.monotonic(), keys)
            return keys

    def _fetch(self, url: str) -> tuple[dict[str, Any], ...]:
        try:
            with self.session.get(url, timeout=_JWKS_TIMEOUT, stream=True, allow_redirects=False) as response:
                if response.status_code != 200:
                    raise AuthFailure(f"the JWK Set at {url} answered HTTP {response.status_code}")
                raw = response.raw.read(_JWKS_MAX_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise AuthFailure(f"the JWK Set at {url} could not be fetched ({type(exc).__name__})") from None
        if len(raw) > _JWKS_MAX_BYTES:
            raise AuthFailure(f"the JWK Set at {url} is larger than {_JWKS_MAX_BYTES} bytes")
        try:
            jwks = json.loads(raw)
            return _checked_keys(jwks, url)
        except (ValueError, TrustedClientsError) as exc:
            raise AuthFailure(f"the JWK Set at {url} is not usable ({type(exc).__name__})") from None


# --- verification --------------------------------------------------------------------------------


class Authenticator:
    def __init__(
        self,
        clients: dict[str, list[TrustedClient]],
        replay: ReplayCache,
        fetcher: JwksFetcher,
        *,
        leeway: int,
        max_lifetime: int,
    ):
        self.clients = clients
        self.replay = replay
        self.fetcher = fetcher
        self.leeway = leeway
        self.max_lifetime = max_lifetime

    def verify(self, authorization: str | None, audience: str) -> TrustedClient:
        """The client that signed the bearer token in ``authorization``, or ``AuthFailure`` saying why not."""
        token = _bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise AuthFailure("the bearer token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            shown = repr(alg) if isinstance(alg, str) and alg in _REGISTERED_ALGORITHMS else fingerprint(alg)
            raise AuthFailure(f"alg {shown} is not allowed (asymmetric algorithms only)")
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or issuer not in self.clients:
            raise AuthFailure(f"unknown iss {fingerprint(issuer)}{self._near_issuer(issuer)}")
        client = _client_for(self.clients[issuer], claims.get("tenant"))
        for claim in _NUMERIC_DATES:
            if claim in claims and not _is_number(claims[claim]):
                raise AuthFailure(
                    f"{claim} must be a JSON number of seconds, not {_json_kind(claims[claim])}", issuer
                )
        payload = self._verified_claims(token, header, client, audience)
        jti = payload.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise AuthFailure(f"jti must be a string of 1 to {MAX_JTI_LENGTH} characters", issuer)
        exp = int(payload["exp"])
        if exp > time.time() + self.max_lifetime + self.leeway:
            raise AuthFailure(f"exp is more than {self.max_lifetime} s in the future", issuer)
        if not self.replay.claim(issuer, jti, expiry(exp, self.leeway)):
            raise AuthFailure("jti was already used (replay)", issuer)
        return client

    def _near_issuer(self, issuer: Any) -> str:
        """For a mistyped iss: the configured issuer it matches but for case or a trailing slash."""
        if not isinstance(issuer, str):
            return ""
        near = [i for i in self.clients if i.rstrip("/").casefold() == issuer.rstrip("/").casefold()]
        return f" (differs from the configured {near[0]} only in case or a trailing slash)" if near else ""

    def _verified_claims(
        self, token: str, header: dict[str, Any], client: TrustedClient, audience: str
    ) -> dict[str, Any]:
        alg: str = header["alg"]
        candidates = self._candidate_keys(header, client)
        last_failure = "no key of the client's JWK Set fits the token's kid and alg"
        for jwk in candidates:
            try:
                key = jwt.PyJWK(jwk, algorithm=alg)
            except (jwt.PyJWKError, jwt.InvalidKeyError, KeyError, ValueError, TypeError):
                continue
            try:
                return jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    audience=audience,
                    issuer=client.issuer,
                    leeway=self.leeway,
                    options={
                        "require": ["iss", "aud", "exp", "iat", "jti"],
                        "enforce_minimum_key_length": True,
                    },
                )
            except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError, jwt.InvalidKeyError) as exc:
                last_failure = (
                    "the signature does not verify"
                    if isinstance(exc, jwt.InvalidSignatureError)
                    else f"the key does not fit ({exc})"
                )
            except jwt.ExpiredSignatureError:
                raise AuthFailure("the token has expired (exp)", client.issuer) from None
            except jwt.ImmatureSignatureError:
                raise AuthFailure(
                    "the token is not valid yet (iat or nbf in the future)", client.issuer
                ) from None
            except jwt.InvalidAudienceError:
                claimed = jwt.decode(token, options={"verify_signature": False}).get("aud")
                raise AuthFailure(_audience_mismatch(claimed, audience), client.issuer) from None
            except jwt.MissingRequiredClaimError as exc:
                raise AuthFailure(f"the {exc.claim} claim is missing", client.issuer) from None
            except jwt.InvalidTokenError as exc:
                raise AuthFailure(f"invalid claims ({type(exc).__name__}: {exc})", client.issuer) from None
        raise AuthFailure(last_failure, client.issuer)

    def _candidate_keys(self, header: dict[str, Any], client: TrustedClient) -> list[dict[str, Any]]:
        """The client's keys that may have signed the token: its pinned ones when they hold the kid (no
        fetch, whatever the jku), else those at the token's allowlisted jku or at the client's jwks_url."""
        jku = header.get("jku")
        kid = header.get("kid")
        alg: str = header["alg"]
        if not isinstance(kid, str) or not kid:
            raise AuthFailure("the token header has no kid (CDS Hooks 2.0 requires one)", client.issuer)

        def fitting(keys: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                k
                for k in keys
                if k.get("kid") == kid
                and k.get("kty") == _KEY_TYPE[alg[0]]
                and k.get("alg") in (None, alg)
                and k.get("use") in (None, "sig")
            ]

        if any(k.get("kid") == kid for k in client.keys or ()):
            return fitting(client.keys or ())
        unpinned = f"kid {fingerprint(kid)} is not among the client's pinned keys" if client.keys else ""
        if jku is not None:
            if not isinstance(jku, str) or jku not in client.jku:
                raise AuthFailure(
                    f"jku {fingerprint(jku)} is not on this client's allowlist"
                    + (f" and {unpinned}" if unpinned else ""),
                    client.issuer,
                )
            url = jku
        elif client.jwks_url is not None:
            url = client.jwks_url
        else:
            raise AuthFailure(
                f"{unpinned or 'the client has no pinned keys'} and the token names no jku", client.issuer
            )
        try:
            found = fitting(self.fetcher.keys(url))
            if not found:  # perhaps a rotated key: fetch again (rate-limited)
                found = fitting(self.fetcher.keys(url, refresh=True))
        except AuthFailure as failure:
            raise AuthFailure(failure.reason, client.issuer) from None
        return found


def _client_for(entries: Sequence[TrustedClient], tenant: Any) -> TrustedClient:
    by_tenant = {c.tenant: c for c in entries}
    if isinstance(tenant, str) and tenant in by_tenant:
        return by_tenant[tenant]
    if None in by_tenant:
        return by_tenant[None]
    raise AuthFailure(f"tenant {fingerprint(tenant)} is not configured for this iss", entries[0].issuer)


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthFailure("no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailure("the Authorization header is not 'Bearer <token>'")
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthFailure(f"the bearer token is longer than {MAX_TOKEN_BYTES} bytes")
    return token.strip()


def fingerprint(value: Any) -> str:
    """A caller-chosen header or claim value as the log shows it: a string by a keyed hash (``fp:`` and 10
    hex digits), anything else by its JSON kind. Never the value, which may carry a patient id."""
    if isinstance(value, str):
        return "fp:" + hmac.new(_FINGERPRINT_KEY, value.encode(), "sha256").hexdigest()[:10]
    return f"({_json_kind(value)})"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null or absent"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number" if math.isfinite(value) else "NaN or an infinity"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _is_number(value: Any) -> bool:
    """A JSON number (RFC 7519 NumericDate): not a numeric string, not a boolean, not NaN or infinity."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _audience_mismatch(claimed: Any, audience: str) -> str:
    """Which part of ``aud`` is wrong, naming only this endpoint's own origin, never the claimed URLs."""
    origin = _origin(audience)
    values = claimed if isinstance(claimed, list) else [claimed]
    if any(isinstance(v, str) and _origin(v) == origin for v in values):
        return f"aud names this endpoint's origin ({origin}) but not the path called"
    return f"aud is not this endpoint: it names another origin than {origin}"


def _origin(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- the Flask side ------------------------------------------------------------------------------


def endpoint_url(settings: Settings) -> str:
    """The URL this request was sent to, as the caller saw it: the JWT's expected ``aud``."""
    if settings.public_base_url:
        return settings.public_base_url + request.path
    return request.base_url


def request_fhir_servers() -> FhirServerAllowlist | None:
    """The FHIR servers this request may name: the authenticated client's list, None in open mode."""
    if current_app.extensions.get(_EXTENSION_KEY) is None:
        return None
    client: TrustedClient | None = g.get("cds_client")
    return client.fhir_servers if client is not None else FhirServerAllowlist(())


def check_open_mode(settings: Settings, host: str | None = None) -> None:
    """Raise ``OpenModeRefused`` when, with no trusted clients, ``host`` is not a loopback address."""
    host = host or settings.host
    if settings.trusted_clients is not None or _is_loopback(host) or settings.allow_unauthenticated:
        return
    raise OpenModeRefused(
        f"no trusted clients are configured (CDS_TRUSTED_CLIENTS) and {host} is not a loopback address: "
        "refusing to serve without authentication; configure trusted clients, bind 127.0.0.1, "
        "or set CDS_ALLOW_UNAUTHENTICATED=1"
    )


def init_app(app: Flask, settings: Settings, engine: Any) -> Authenticator | None:
    """Authentication for ``app``, or None in open mode (after checking open mode is allowed here)."""
    if settings.trusted_clients is None:
        check_open_mode(settings)
        app.extensions[_EXTENSION_KEY] = None
        if _is_loopback(settings.host):
            log.warning(
                "no trusted clients configured (CDS_TRUSTED_CLIENTS): serving WITHOUT authentication, "
                "loopback only (%s)",
                settings.host,
            )
        else:
            log.warning(
                "no trusted clients configured: serving WITHOUT authentication on %s because "
                "CDS_ALLOW_UNAUTHENTICATED=1",
                settings.host,
            )
        return None

    clients = load_trusted_clients(settings.trusted_clients)
    session = requests.Session()
    authenticator = Authenticator(
        clients,
        ReplayCache(engine, timeout=settings.store_timeout, memory_fallback=settings.replay_memory_fallback),
        JwksFetcher(session, settings.jwks_cache_seconds),
        leeway=settings.jwt_leeway,
        max_lifetime=settings.jwt_max_lifetime,
    )
    app.extensions[_EXTENSION_KEY] = authenticator
    log.info(
        "authentication on: %d trusted client entries (%s)",
        sum(map(len, clients.values())),
        ", ".join(sorted(clients)),
    )

    @app.before_request
    def _authenticate() -> Response | None:
        if request.method == "OPTIONS" or request.endpoint in EXEMPT_ENDPOINTS:
            return None
        try:
            client = authenticator.verify(request.headers.get("Authorization"), endpoint_url(settings))
        except SQLAlchemyError as exc:
            # The replay cache is out of reach: the token cannot be fully checked, so nothing is let in,
            # but the EHR is told to retry rather than that its credentials are wrong.
            log.error("token not checked: replay cache unreachable (%s)", type(exc).__name__)
            g.setdefault("log_fields", {})["auth"] = "replay cache unreachable"
            response = Response(orjson.dumps(UNAVAILABLE), status=503, mimetype="application/json")
            response.headers["Retry-After"] = "5"
            return response
        except AuthFailure as failure:
            fields = {"auth": "refused", "reason": failure.reason}
            if failure.issuer:
                fields["iss"] = failure.issuer
            log.warning("token refused: %s", failure.reason, extra={"fields": fields})
            g.setdefault("log_fields", {})["auth"] = failure.reason
            response = Response(orjson.dumps(UNAUTHORIZED), status=401, mimetype="application/json")
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
        g.cds_client = client
        g.setdefault("log_fields", {})["client"] = client.issuer + (
            f" ({client.tenant})" if client.tenant else ""
        )
        return None

    return authenticator
