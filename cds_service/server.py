"""The HTTP server ``cds-service serve`` runs: gunicorn's threaded worker, bounded, its refusals in JSON.

A gthread worker serves each connection on one of a fixed number of threads, so a connection that sends
its headers slowly, or a call waiting on a slow FHIR server, holds one thread and the others keep
answering (the sync worker it replaces had one connection per process: two slow clients stalled it).
gunicorn reads a request's line and headers on the worker thread and has no deadline for them: a client
sending a byte a second would hold its thread for as long as it likes. This worker gives each connection
``header_timeout`` seconds from when a thread takes it up, then answers 408 and closes it.

Requests gunicorn refuses before the app sees them (a header or request line over the limit, headers too
slow) are answered with the app's JSON error body, so a client sees one error format whatever refused it.
It subclasses gunicorn's gthread worker (``handle``, ``handle_request``, ``murder_pending``), hence the
pinned gunicorn major version; ``tests/test_server.py`` drives each behaviour through real gunicorn.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import orjson
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker
from werkzeug.exceptions import HTTPException, RequestHeaderFieldsTooLarge, RequestTimeout, RequestURITooLarge

from .metrics import child_exit  # noqa: F401  (a gunicorn server hook, read through --config below)
from .routes import http_error_body
from .settings import Settings

log = logging.getLogger(__name__)

WORKER_CLASS = f"{__name__}.JsonErrorThreadWorker"
MAX_REQUEST_LINE = 8190  # gunicorn's ceiling: the method, the path with its query, and the version


def gunicorn_options(settings: Settings) -> list[str]:
    """The command-line options that set gunicorn's server model from ``settings``."""
    return [
        "--worker-class", WORKER_CLASS,
        "--workers", str(settings.workers),
        "--threads", str(settings.threads),
        "--timeout", str(settings.worker_timeout),
        "--graceful-timeout", str(settings.graceful_timeout),
        "--keep-alive", str(settings.keepalive),
        "--limit-request-line", str(MAX_REQUEST_LINE),
        "--limit-request-field_size", str(settings.max_header_bytes),
        "--no-control-socket",  # unused, and one path per user: several services on a host would share it
        "--config", f"python:{__name__}",  # the server hooks of this module (child_exit: a dead worker's metrics)
    ]  # fmt: skip


class JsonErrorThreadWorker(ThreadWorker):
    """gunicorn's gthread worker with a deadline for request headers, and its refusals in JSON."""

    def init_process(self) -> None:
        from .wsgi import settings  # the app's own settings, loaded before the fork (--preload)

        self.header_timeout = settings.header_timeout
        self._heads_lock = threading.Lock()
        # thread id -> (deadline, socket): the connections whose request line and headers are being read
        self._reading_heads: dict[int, tuple[float, socket.socket]] = {}
        super().init_process()  # runs the worker's loop until it stops

    def handle(self, conn: Any) -> Any:
        with self._heads_lock:
            self._reading_heads[threading.get_ident()] = (time.monotonic() + self.header_timeout, conn.sock)
        try:
            return super().handle(conn)
        finally:
            self._head_read()

    def handle_request(self, req: Any, conn: Any) -> bool:
        self._head_read()  # the headers are in: what follows is the app's time, not the client's
        return super().handle_request(req, conn)

    def _head_read(self) -> None:
        with self._heads_lock:
            self._reading_heads.pop(threading.get_ident(), None)

    def murder_pending(self) -> None:
        """Run by the worker's loop about once a second: also ends the heads that are past their deadline."""
        super().murder_pending()
        now = time.monotonic()
        with self._heads_lock:  # held while answering, so no head finishes and enters the app meanwhile
            late = [(tid, sock) for tid, (deadline, sock) in self._reading_heads.items() if deadline <= now]
            for tid, sock in late:
                del self._reading_heads[tid]
                self._answer(
                    sock, RequestTimeout(), f"the request headers took longer than {self.header_timeout:g} s"
                )
                try:  # the thread blocked reading the rest of the headers wakes up to a closed connection
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        refusal = self._refusal(exc)
        if refusal is None:
            super().handle_error(req, client, addr, exc)
            return
        self._answer(client, *refusal)

    def _refusal(self, exc: BaseException) -> tuple[HTTPException, str] | None:
        if isinstance(exc, LimitRequestHeaders):
            return RequestHeaderFieldsTooLarge(), (
                f"a request header is longer than {self.cfg.limit_request_field_size} bytes, or there are "
                f"more than {self.cfg.limit_request_fields} headers"
            )
        if isinstance(exc, LimitRequestLine):
            return RequestURITooLarge(), f"the request line is longer than {MAX_REQUEST_LINE} bytes"
        return None

    @staticmethod
    def _answer(sock: socket.socket, error: HTTPException, message: str) -> None:
        # The status only: the refused line or header may carry a token or a patient id.
        log.warning("request refused before the app: %s %s", error.code, error.name)
        body = orjson.dumps(http_error_body(error, message))
        head = (
            f"HTTP/1.1 {error.code} {error.name}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        try:  # without blocking, and without changing the socket's mode under the thread that reads it
            sock.send(head.encode("latin-1") + body, socket.MSG_DONTWAIT)
        except OSError:
            pass  # the client has gone, or stopped reading: nothing to answer
