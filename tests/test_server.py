"""The server model under real gunicorn (``cds-service serve``): slow clients and a trickling FHIR server
hold threads, not the service; a header deadline; oversized headers, request lines and chunked bodies get
the app's JSON errors.

One service for the module: 1 worker x 4 threads, 2 s for request headers, 64 KiB bodies.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest

from bench.fallback import fallback_request
from bench.load import SERVICE_PATH, served
from bench.server_faults import ordinary_body, slow_headers, trickling_calls, trickling_fhir_server

BODY_LIMIT = 64 * 1024
HEADER_TIMEOUT = 2


@pytest.fixture(scope="module")
def port(tmp_path_factory) -> Iterator[int]:
    settings = {
        "CDS_WORKERS": "1",
        "CDS_THREADS": "4",
        "CDS_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "CDS_MAX_BODY_BYTES": str(BODY_LIMIT),
        "CDS_LOG_LEVEL": "WARNING",
    }
    with served(tmp_path_factory.mktemp("server"), settings) as (port, _master):
        yield port


def post(port: int, body, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST", SERVICE_PATH, body, {"Content-Type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, str, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), json.loads(response.read())
    finally:
        connection.close()


def wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the fault did not set in")
        time.sleep(0.05)


# --- slow clients and slow dependencies hold threads, not the service ---------------------------------


def test_a_call_is_answered_while_slow_header_clients_and_a_trickling_fhir_call_hold_threads(port):
    body = ordinary_body()
    with trickling_fhir_server() as fhir:
        trickling = json.dumps(fallback_request(json.loads(body), fhir.base_url)).encode()
        with slow_headers(port, 2, interval=0.1) as slow, trickling_calls(port, trickling, 1, fhir):
            wait_for(lambda: fhir.requests >= 1 and slow.sent >= 4)
            status, answer = post(port, body)
    assert status == 200 and answer["cards"], answer


def test_headers_slower_than_the_deadline_get_408_json_and_the_connection_closes(port):
    head = f"POST {SERVICE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode() + b"a" * 1000
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as client:
        for byte in head[: 20 * (HEADER_TIMEOUT + 3)]:  # a byte every 0.05-0.2 s; bounded to a few seconds
            client.send(bytes([byte]))
            try:
                received = client.recv(4096)
                break
            except TimeoutError:
                continue
        client.settimeout(5)
        while chunk := client.recv(4096):
            received += chunk
    head, _, answer = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"Content-Type: application/json" in head
    assert json.loads(answer)["code"] == "request-timeout"


# --- sizes: oversized headers and request lines, chunked bodies ------------------------------------------


def test_a_16_kb_bearer_token_reaches_the_app(port):
    status, content_type, answer = get(port, "/cds-services", {"Authorization": "Bearer " + "a" * 16 * 1024})
    assert status == 200 and len(answer["services"]) == 4


def test_a_header_over_the_limit_gets_the_apps_json_431(port):
    status, content_type, answer = get(port, "/healthz", {"Authorization": "Bearer " + "a" * 40 * 1024})
    assert (status, content_type, answer["code"]) == (
        431,
        "application/json",
        "request-header-fields-too-large",
    )


def test_a_request_line_over_the_limit_gets_the_apps_json_414(port):
    status, content_type, answer = get(port, "/healthz?" + "a" * 9000, {})
    assert (status, content_type, answer["code"]) == (414, "application/json", "request-uri-too-long")


def chunks(data: bytes, size: int = 8192) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def test_a_chunked_body_over_the_limit_gets_413_as_with_content_length(port):
    over = b" " * (3 * BODY_LIMIT)  # not JSON either: the size is refused first
    chunked = post(port, chunks(over))  # an iterable body: http.client sends it chunked
    with_length = post(port, over)
    assert (
        chunked
        == with_length
        == (413, {"code": "request-entity-too-large", "message": chunked[1]["message"]})
    )


def test_a_chunked_body_within_the_limit_is_read_whole(port):
    status, answer = post(port, chunks(ordinary_body(), 1000))
    assert status == 200 and answer["cards"]
