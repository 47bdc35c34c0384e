"""The console script: invoke a fixture, print content and the report, and serve under real gunicorn."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cds_service.cli import main
from cds_service.settings import Settings


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("CDS_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    return tmp_path


def test_invoke_a_ready_made_request_prints_the_cards_readably(env, capsys):
    assert main(["invoke", "order-select/low-anc-new-start"]) == 0
    out = capsys.readouterr().out
    assert "CRITICAL (lab-hold): Hold baricitinib: ANC 800 cells/uL" in out
    assert "-> suggestion: Remove the baricitinib draft order (delete MedicationRequest/draft-baricitinib)" in out


def test_invoke_builds_a_request_from_a_patient_and_orders_and_prints_json(env, capsys):
    assert main(["invoke", "order-sign:labhold-hb-7.9:baricitinib-2mg", "--json"]) == 0
    response = json.loads(capsys.readouterr().out)
    assert "lab-hold" in {c["source"]["topic"]["code"] for c in response["cards"]}


def test_invoke_says_what_is_wrong_with_an_unknown_fixture(env, capsys):
    assert main(["invoke", "order-select/no-such-fixture"]) == 2
    assert "cannot read 'order-select/no-such-fixture'" in capsys.readouterr().err


def test_invoke_then_report_counts_the_cards_shown(env, capsys):
    main(["invoke", "order-select/low-anc-new-start"])
    capsys.readouterr()
    assert main(["report", "--json"]) == 0
    topics = {row["topic"]: row for row in json.loads(capsys.readouterr().out)["topics"]}
    assert topics["lab-hold"]["shown"] == 1 and topics["lab-hold"]["overridden"] == 0


def test_content_prints_the_rules_then_the_unit_strings_then_bundles_and_silencing(env, capsys):
    assert main(["content"]) == 0
    rules, units, left_out, bundles, silencing = capsys.readouterr().out.strip().split("\n\n## ")
    lines = rules.splitlines()
    assert lines[0].startswith("| topic | rule |") and len(lines) == 2 + len(list((Settings().content_dir / "rules").glob("*.toml")))
    assert units.startswith("Unit strings lab feeds write")
    assert "| K/uL | 10*3/uL | yes | Synthea issue 1198" in units
    assert left_out.startswith("Left out: UNVERIFIED or NOT FOUND in the reference pack")
    assert "| before-starting | new-start | baseline-labs: baseline tests, vaccination-reminder: vaccines |" in bundles
    assert silencing.splitlines()[-1] == "| off-label-use | informed-consent-documented | 365 |"


def test_bad_content_stops_every_command_with_the_message(env, tmp_path, monkeypatch, capsys):
    broken = tmp_path / "cards"
    shutil.copytree(Settings().content_dir, broken)
    (broken / "labs.toml").write_text((broken / "labs.toml").read_text().replace('"g/L" = 0.1', '"g/L" = -1'))
    monkeypatch.setenv("CDS_CONTENT_DIR", str(broken))
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "clinical content is invalid, not starting" in err and "labs.toml" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_gunicorn_with_the_embedded_sqlite_default(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    env |= {"CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'served.sqlite3'}", "CDS_WORKERS": "2"}
    command = [sys.executable, "-m", "cds_service.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, cwd=Path(__file__).parents[1], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        for _ in range(600):  # a loaded machine (CI shares its cores) can take 15 s to load the content
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                    assert json.load(response)["checks"] == {"content": "loaded", "database": "writable"}
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not answer /readyz within 60 s")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/cds-services", timeout=5) as response:
            assert len(json.load(response)["services"]) == 4
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=10)[0].decode()
    assert "Booting worker" in output


def test_every_setting_is_in_the_readme_settings_table():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme[readme.index("## Settings"):readme.index("## Connecting an EHR")]
    assert [n for n in Settings.model_fields if f"`CDS_{n.upper()}`" not in table] == []
