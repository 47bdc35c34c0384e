"""CDS Hooks 2.0 service for baricitinib (Olumiant) used off-label in systemic lupus erythematosus."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from . import auth, cors, feedback_store, log_redaction, metrics, routes
from . import content as content_module
from .collector import CollectorPausedDuringCalls
from .fhir_client import fhir_session
from .pipeline import Runtime
from .rules import load_rules
from .settings import Settings
from .silencing import Silencing, patient_key_secret

__all__ = ["Settings", "create_app"]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def create_app(settings: Settings | None = None) -> Flask:
    """The WSGI app. Loads and checks the clinical content first: bad content raises ContentError.

    Without trusted clients on a non-loopback ``settings.host`` it raises ``auth.OpenModeRefused``; a bad
    trusted clients file raises ``auth.TrustedClientsError``, a bad CORS origin ``cors.CorsOriginError``.
    """
    settings = settings or Settings()
    log_redaction.redact_library_logs()
    auth.check_open_mode(settings)  # before anything else: no trusted clients on a public address stops here
    content = content_module.load(settings.content_dir, load_rules())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["cds_runtime"] = Runtime(
        settings, content, fhir_session(), ThreadPoolExecutor(max_workers=16, thread_name_prefix="fhir")
    )
    store = feedback_store.init_app(app, settings)
    app.extensions["cds_silencing"] = Silencing(content, store, patient_key_secret(settings))
    routes.register(app)
    metrics.init_app(app, settings)
    auth.init_app(app, settings, store.engine)  # after routes: its check runs after the request clock starts
    cors.init_app(app, settings)
    app.wsgi_app = CollectorPausedDuringCalls(app.wsgi_app)  # type: ignore[method-assign]
    return app
