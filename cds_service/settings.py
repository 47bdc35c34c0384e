"""Every setting the service reads, typed, from environment variables prefixed ``CDS_``.

Code receives a ``Settings`` object; nothing reads the environment anywhere else.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        default=60 * 1024 * 1024,
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
