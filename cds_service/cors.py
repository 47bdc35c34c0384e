"""Which web pages may call the service from a browser (CORS), and nothing wider.

Browser-based CDS clients, the CDS Hooks sandbox first among them, call discovery, the hook services and
feedback directly from their page. They may do so from ``https://sandbox.cds-hooks.org`` and the origins
in ``CDS_CORS_ORIGINS``, with ``GET``/``POST`` and the ``Authorization`` and ``Content-Type`` headers; no
other origin, path, method or header gets a CORS header, and no credentials (cookies) are allowed. A
public page calling a service on a private or loopback address sends its preflight with
``Access-Control-Request-Private-Network: true``; allowed origins get
``Access-Control-Allow-Private-Network: true``. Preflights carry no token and need none (see auth.py).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Flask
from flask_cors import CORS

from .settings import Settings

SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"
METHODS = ["GET", "POST", "OPTIONS"]
HEADERS = ["Authorization", "Content-Type"]
PATHS = [r"/cds-services", r"/cds-services/*"]  # discovery, each service and its feedback


class CorsOriginError(ValueError):
    """A ``CDS_CORS_ORIGINS`` entry that is not a plain origin."""


def allowed_origins(settings: Settings) -> list[str]:
    """The sandbox and the configured origins, each checked to be ``scheme://host[:port]`` exactly.

    Wildcards and patterns are refused: a pattern a little too wide lets any page on the web read
    PHI-bearing answers. flask-cors is given each origin as an exact, case-insensitive match.
    """
    origins = [SANDBOX_ORIGIN]
    for origin in settings.cors_origins:
        origin = origin.rstrip("/")
        parts = urlsplit(origin)
        plain = (
            parts.scheme in ("http", "https")
            and parts.hostname
            and not parts.path
            and not parts.query
            and not parts.fragment
            and "@" not in parts.netloc
            and "*" not in origin
        )
        if not plain:
            raise CorsOriginError(
                f"CDS_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port], no wildcard)"
            )
        if origin not in origins:
            origins.append(origin)
    return origins


def init_app(app: Flask, settings: Settings) -> None:
    options = {
        "origins": [re.compile(re.escape(o) + r"\Z", re.IGNORECASE) for o in allowed_origins(settings)],
        "methods": METHODS,
        "allow_headers": HEADERS,
        "supports_credentials": False,
        "allow_private_network": True,
        "max_age": 600,
        "send_wildcard": False,
        "vary_header": True,
        "always_send": False,  # no Origin header, no CORS header
    }
    CORS(app, resources={path: options for path in PATHS})
