"""Every setting the service reads, typed, from environment variables prefixed ``CDS_``.

Code receives a ``Settings`` object; nothing reads the environment anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDS_", extra="ignore")

    content_dir: Path = Field(
        default=PROJECT_ROOT / "cards",
        description="Folder of reviewed clinical content (TOML). Bad content stops the service at start-up.",
    )
    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'instance' / 'cds.sqlite3'}",
        description="SQLAlchemy URL of the feedback and card-log store: sqlite:///path or "
        "postgresql+psycopg://user@host/db.",
    )
    max_body_bytes: int = Field(
        # 48 MiB (50,331,648 bytes): admits a patient with 50,000 lab results (about 32 MB of prefetch) and
        # stays below 60 MB, decimal or binary (60 MiB would be 62,914,560 bytes).
        default=48 * 1024 * 1024,
        gt=0,
        description="Largest hook request body accepted; larger bodies get 413.",
    )
    fhir_connect_timeout: float = Field(default=3.05, gt=0, description="Seconds to connect to fhirServer.")
    fhir_read_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for a FHIR response.")
    fhir_max_pages: int = Field(
        default=10, ge=1, description="Most searchset pages followed (by `next` link) per prefetch query."
    )
    fhir_max_response_bytes: int = Field(
        default=50 * 1024 * 1024, gt=0, description="A FHIR response larger than this is cut off."
    )
    host: str = Field(default="127.0.0.1", description="Address `cds-service serve` binds to.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port `cds-service serve` listens on.")
    workers: int = Field(default=2, ge=1, description="gunicorn worker processes for `cds-service serve`.")
    log_level: str = Field(default="INFO", description="Python logging level of the service's JSON log.")

    # --- trust (issue 5): who may call, what the service may call back, which pages may use it ---
    trusted_clients: Path | None = Field(
        default=None,
        description="JSON file of the CDS clients (EHRs) whose signed JWTs are accepted. Unset: no "
        "authentication, served on loopback only.",
    )
    allow_unauthenticated: bool = Field(
        default=False,
        description="With no trusted clients, serve on a non-loopback address anyway (1); closed networks.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="The URL the EHR calls, less the paths (e.g. https://cds.example.org), behind a "
        "proxy: JWT `aud` must equal it plus the path called. Unset: the URL of the request as received.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (comma-separated) allowed to call from a browser, besides the sandbox.",
    )
    fhir_servers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="fhirServer base URLs (comma-separated) the service may call in open mode. Unset: "
        "any http(s) server on 127.0.0.1, ::1 or localhost. With trusted clients, each client's list counts.",
    )
    jwt_leeway: int = Field(default=30, ge=0, le=300, description="Clock skew (seconds) allowed on exp, iat.")
    jwt_max_lifetime: int = Field(
        default=3600, ge=60, description="A token whose exp is further than this (seconds) ahead is refused."
    )
    jwks_cache_seconds: int = Field(
        default=300, ge=0, description="How long a JWK Set fetched from jwks_url or jku is reused (seconds)."
    )

    # --- cards silenced for a patient (cards/silencing.toml) ---
    patient_key_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Secret of the keyed hash (HMAC-SHA256) by which the card log knows a patient whose card "
        "a clinician silenced, e.g. consent to off-label use documented. Unset: a random secret kept in "
        "patient_key_secret_file. Several hosts sharing one database need the same secret.",
    )
    patient_key_secret_file: Path = Field(
        default=PROJECT_ROOT / "instance" / "patient-key.secret",
        description="Where the patient-key secret is kept when CDS_PATIENT_KEY_SECRET is unset (made on first start, mode 600).",
    )

    # --- FHIR fallback deadline and limits (issue 13) ---
    call_deadline: float = Field(
        # EHRs give a CDS service about 5-10 s before they show the order without its cards; 4 s leaves
        # room for the rules, the card log and the network on the way back within the shortest of those.
        default=4.0,
        gt=0,
        description="Seconds one hook call may spend fetching from fhirServer, name resolution and every "
        "query and page included. What has not arrived by then is named in the data-quality card "
        "(412 if it is the patient).",
    )

    # --- server model and slow clients (issue 13): gunicorn gthread workers under `cds-service serve` ---
    threads: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Threads per gunicorn worker, each serving one connection at a time. A connection "
        "that sends its headers slowly, or a call waiting on a slow FHIR server, holds one; the rest answer.",
    )
    worker_timeout: int = Field(
        default=60,
        ge=1,
        description="Seconds a gunicorn worker may go without reporting alive before it is restarted.",
    )
    graceful_timeout: int = Field(
        default=30,
        ge=1,
        description="Seconds a stopping worker has to finish the calls under way before it is killed.",
    )
    keepalive: int = Field(
        default=5,
        ge=0,
        description="Seconds an idle kept-alive connection stays open (0: close after each response).",
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=8190,
        description="Largest request header line (name, value) in bytes, so that 8-16 KB bearer tokens "
        "fit; longer gets 431 request-header-fields-too-large.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a connection has to send its request line and headers once a thread takes "
        "it up; later, it gets 408 and is closed (a slow-header client holds a thread that long at most).",
    )

    # --- storage, readiness and metrics (issue 13): the database never holds a clinical answer ---
    store_timeout: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="Seconds a request waits for the feedback/card-log database (a feedback write, a JWT "
        "replay check, the readiness check); PostgreSQL's statement and lock timeouts and connect timeout "
        "(at least 2 s) follow it. Past it feedback answers 503 with Retry-After and /readyz says not ready.",
    )
    card_log_queue: int = Field(
        default=1000,
        ge=1,
        description="Hook calls per worker whose shown cards may wait for the database; beyond it their "
        "card-log rows are dropped and counted (cds_card_log_rows_not_written_total), never waited for.",
    )
    replay_memory_fallback: bool = Field(
        default=True,
        description="While the database holding the JWT replay cache is unreachable, each worker checks "
        "jti values in its own memory (1), or every authenticated call is refused with 503 (0).",
    )
    metrics_dir: Path | None = Field(
        default=None,
        description="Folder where gunicorn workers keep their Prometheus counts; `cds-service serve` "
        "empties it at start (unset: a new temporary folder). Unset without serve: counts in memory.",
    )

    @field_validator("cors_origins", "fhir_servers", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]
        return value

    @field_validator("public_base_url")
    @classmethod
    def _http_base(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.lower().startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ValueError("CDS_PUBLIC_BASE_URL must be an http(s) URL without query or fragment")
        return value.strip().rstrip("/")
