"""``cds-service``: serve | invoke | report | content.

- serve   runs gunicorn on the WSGI app (the content is checked first; bad content exits with its message)
- invoke  sends one hook request (a file, or a fixture name) through the real app and prints the cards
- report  prints the alert-fatigue report (cards shown, accepted, overridden, override reasons per topic)
- content prints every rule as one Markdown table for clinical sign-off, then the unit strings it reads,
          what the reference pack left unverified, the cards shown as one and what an override can silence
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from . import content as content_module
from . import fixtures
from .facts import utc_today
from .report import report_command
from .rules import load_rules
from .settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cds-service", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service under gunicorn")
    serve.add_argument("--host", help="address to bind (default CDS_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default CDS_PORT, 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default CDS_WORKERS, 2)")

    invoke = commands.add_parser("invoke", help="call a hook with a request file or fixture and print the cards")
    invoke.add_argument(
        "request",
        help="a hook request JSON file, or a fixture: <hook>/<name> from fhir_fixtures/requests, or "
        "<hook>:<patient>[:<order>,<order>...] built from fhir_fixtures/patients and orders",
    )
    invoke.add_argument("--service", help="service id (default: the service for the request's hook)")
    invoke.add_argument("--json", action="store_true", help="print the raw CDS Hooks response")

    report = commands.add_parser("report", help="alert-fatigue report per card topic")
    report.add_argument("--from", dest="start", type=date.fromisoformat, help="first day, YYYY-MM-DD (UTC)")
    report.add_argument("--to", dest="end", type=date.fromisoformat, help="last day included, YYYY-MM-DD (UTC)")
    report.add_argument("--json", action="store_true", help="print JSON")

    commands.add_parser("content", help="print every rule as a Markdown table for clinical review")

    args = parser.parse_args(argv)
    settings = Settings()
    try:
        content = content_module.load(settings.content_dir, load_rules())
    except content_module.ContentError as exc:
        print(f"cds-service: clinical content is invalid, not starting: {exc}", file=sys.stderr)
        return 2

    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "invoke":
        return _invoke(settings, args)
    if args.command == "report":
        print(report_command(settings, args.start, args.end, args.json))
        return 0
    print(content_table(content))
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from . import auth, cors, metrics, server

    host = args.host or settings.host
    port = args.port or settings.port
    if args.workers:
        settings = settings.model_copy(update={"workers": args.workers})
    try:  # the trust settings are checked here, where the bind address is known, before gunicorn starts
        auth.check_open_mode(settings, host)
        if settings.trusted_clients is not None:
            auth.load_trusted_clients(settings.trusted_clients)
        cors.allowed_origins(settings)
    except (auth.OpenModeRefused, auth.TrustedClientsError, cors.CorsOriginError) as exc:
        print(f"cds-service: not starting: {exc}", file=sys.stderr)
        return 2
    os.environ["CDS_HOST"] = host  # the app checks the same address (wsgi.py reads the environment)
    metrics.prepare_multiprocess_dir(settings)  # workers count into files /metrics adds up; gunicorn inherits it
    command = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        *server.gunicorn_options(settings),
        "--preload",  # load and check the content once, before forking; a bad file stops the master
        "cds_service.wsgi:app",
    ]  # fmt: skip
    os.execv(sys.executable, command)
    return 0  # pragma: no cover (execv does not return)


def load_request(spec: str, today: date) -> dict[str, Any]:
    """A request from a file path or a fixture name, its dates rolled to ``today``."""
    path = Path(spec)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    if ":" in spec:
        hook, patient, *rest = spec.split(":")
        orders = [o for o in (rest[0].split(",") if rest else []) if o]
        return fixtures.rolled_to(fixtures.hook_request(hook, patient, orders), today)
    return fixtures.rolled_to(fixtures.request_file(spec), today)


def _invoke(settings: Settings, args: argparse.Namespace) -> int:
    from . import create_app
    from .services import SERVICES

    try:
        body = load_request(args.request, utc_today())
    except (OSError, ValueError, KeyError) as exc:
        print(f"cds-service invoke: cannot read {args.request!r}: {exc}", file=sys.stderr)
        return 2
    service_id = args.service or next((s.id for s in SERVICES if s.hook == body.get("hook")), None)
    if service_id is None:
        print(f"cds-service invoke: no service answers hook {body.get('hook')!r}", file=sys.stderr)
        return 2
    # In-process, no socket and no EHR: run open, whatever CDS_TRUSTED_CLIENTS and CDS_HOST say.
    local = settings.model_copy(update={"trusted_clients": None, "host": "127.0.0.1"})
    client = create_app(local).test_client()
    response = client.post(f"/cds-services/{service_id}", json=body)
    if args.json or response.status_code != 200:
        print(json.dumps(response.get_json(), indent=2))
        return 0 if response.status_code == 200 else 1
    print(render_cards(response.get_json()))
    return 0


def render_cards(response: dict[str, Any]) -> str:
    cards = response.get("cards", [])
    if not cards:
        return "No cards."
    blocks = []
    for number, item in enumerate(cards, 1):
        lines = [f"[{number}] {item['indicator'].upper()} ({item['source'].get('topic', {}).get('code', '?')}): {item['summary']}"]
        lines += ["    " + line for line in (item.get("detail") or "").splitlines()]
        for suggestion in item.get("suggestions") or []:
            actions = "; ".join(f"{a['type']} {a.get('resourceId') or a['resource']['resourceType']}" for a in suggestion.get("actions") or [])
            lines.append(f"    -> suggestion: {suggestion['label']} ({actions})")
        for reason in item.get("overrideReasons") or []:
            lines.append(f"    -> override reason: {reason.get('display') or reason['code']}")
        lines.append(f"    source: {item['source']['label']} {item['source'].get('url', '')}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def content_table(content: content_module.Content) -> str:
    """Every rule as a Markdown table row: what a reviewer signs off without reading Python."""

    def cell(text: str) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")

    rows = [
        "| topic | rule | indicator | basis | when | then | thresholds and settings | runs on | sources | version, review |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    common = set(content_module.RuleContent.model_fields)
    for name, rule in sorted(content.rules.items(), key=lambda r: r[1].topic):
        settings = {k: v for k, v in rule.model_dump(exclude=common).items() if not (k.endswith("_text") or k.endswith("summary") or k.endswith("label"))}
        sources = "; ".join(f"{s.id}: {s.label} ({s.url})" for s in rule.sources)
        rows.append(
            "| " + " | ".join(cell(x) for x in (
                rule.topic, name, rule.indicator, rule.basis, rule.when, rule.then,
                json.dumps(settings, default=str) if settings else "-", ", ".join(rule.runs_on), sources,
                f"{rule.content_version}, {rule.reviewed_by} {rule.reviewed_on}",
            )) + " |"
        )  # fmt: skip
    units = [
        "", "## Unit strings lab feeds write, read as UCUM (cards/units.toml)", "",
        "| written | read as (UCUM) | seen at the source as written | source |", "|---|---|---|---|",
    ]  # fmt: skip
    for entry in content.units.written:
        source = content.units.sources[entry.source]
        seen = "yes" if entry.seen else "no: a near variant"
        units.append(f"| {cell(entry.written)} | {cell(entry.ucum)} | {seen} | {cell(f'{source.label} ({source.url})')} |")
    left_out = [
        "", "## Left out: UNVERIFIED or NOT FOUND in the reference pack (cards/left_out.toml)", "",
        "| what | how the pack marks it | what the service does instead |", "|---|---|---|",
    ]  # fmt: skip
    left_out += [f"| {cell(i.what)} | {cell(i.pack)} | {cell(i.instead)} |" for i in content.left_out.items]
    bundles = [
        "", f"## Cards shown as one (cards/bundles.toml, {content.bundles.content_version}, {content.bundles.reviewed_by})", "",
        "| card topic | when | holds (topic: item name) |", "|---|---|---|",
    ]  # fmt: skip
    bundles += [f"| {b.topic} | {b.applies_to} | {cell(', '.join(f'{t}: {n}' for t, n in b.holds.items()))} |"
                for b in content.bundles.bundles]  # fmt: skip
    silencing = [
        "", "## Silenced for a patient by an override reason (cards/silencing.toml)", "",
        "| topic | override reason | for (days) |", "|---|---|---|",
    ]  # fmt: skip
    silencing += [f"| {e.topic} | {e.reason} | {e.days} |" for e in content.silencing.silence]
    return "\n".join(rows + units + left_out + bundles + silencing)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
