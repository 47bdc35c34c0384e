"""The content indexes (cds_service/content.py) answer as a scan of the content would, and a call does no
more work when cards/ grows: more codes in every value set, more condition, vaccine and drug groups.

The work is counted in Python function calls (sys.setprofile), not timed: the same count whatever the
machine is doing.
"""

from __future__ import annotations

import gc
import re
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service import Settings, codes, create_app
from cds_service.content import GroupIndex, NameIndex, ValueSet, ValueSetEntry
from cds_service.facts import utc_today
from cds_service.fixtures import hook_request, rolled_to
from cds_service.store_deadline import StoreDeadline

ICD_CODES = ["M32", "M32.1", "M32.10", "M32.14", "M32.149", "D68.6", "D68.61", "L93.0", "L93"]
ICD_PREFIXES = ["M32", "M32.1", "M32.", "D68.6", "L93."]
CVX_CODES = ["03", "3", "140", "21"]

entries = st.one_of(
    st.builds(lambda c: {"system": codes.ICD10CM, "code": c, "display": c}, st.sampled_from(ICD_CODES)),
    st.builds(lambda p: {"system": codes.ICD10CM, "prefix": p, "display": p}, st.sampled_from(ICD_PREFIXES)),
    st.builds(lambda c: {"system": codes.CVX, "code": c, "display": c}, st.sampled_from(CVX_CODES)),
)
valuesets = st.builds(
    lambda name, include, exclude: ValueSet.model_validate(
        {"name": name, "title": name, "include": include, "exclude": exclude}
    ),
    st.sampled_from(["a", "b", "c"]),
    st.lists(entries, min_size=1, max_size=6),
    st.lists(entries, max_size=2),
)
probes = st.tuples(
    st.sampled_from([codes.ICD10CM, codes.CVX, codes.SNOMED, None]),
    st.sampled_from(ICD_CODES + CVX_CODES + ["0140", "003", "M321", "M", "", " M32.1 ", None]),
)


def scanned(valueset: ValueSet, system: str | None, code: str | None) -> ValueSetEntry | None:
    """The reference: the first entry in file order, unless an exclude entry matches."""
    if not system or not code:
        return None
    code = codes.normalise(system, code)

    def first(found: list[ValueSetEntry]) -> ValueSetEntry | None:
        for entry in found:
            if entry.system != system:
                continue
            if entry.code is not None and codes.normalise(system, entry.code) == code:
                return entry
            if entry.prefix is not None and code.startswith(entry.prefix):
                return entry
        return None

    return None if first(valueset.exclude) else first(valueset.include)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(valueset=valuesets, probe=probes)
def test_a_value_set_answers_as_a_scan_in_file_order(valueset: ValueSet, probe):
    assert valueset.matches(*probe) is scanned(valueset, *probe)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(groups=st.lists(valuesets, min_size=1, max_size=4), probe=probes)
def test_a_group_index_answers_as_asking_each_group_in_file_order(groups: list[ValueSet], probe):
    by_key = {f"group{i}": valueset for i, valueset in enumerate(groups)}
    expected = [(key, scanned(vs, *probe)) for key, vs in by_key.items() if scanned(vs, *probe)]
    assert GroupIndex(by_key).find(*probe) == expected


@pytest.mark.parametrize(
    "texts, found",
    [
        (["Azathioprine 50 mg tablet"], {"thiopurines": "azathioprine"}),
        (["MYCOPHENOLIC ACID 360 mg"], {"antimetabolites": "mycophenolic acid"}),
        (["mycophenolic-acid 360 mg"], {"antimetabolites": "mycophenolic acid"}),
        (["mycophenolate mofetil"], {"antimetabolites": "mycophenolate"}),
        (["azathioprinex", "pre-azathioprine"], {"thiopurines": "azathioprine"}),  # a whole word only
        (["azathioprinex"], {}),
        (["acid"], {}),
        (["cyclosporine and mycophenolic acid"], {"thiopurines": "cyclosporine", "antimetabolites": "mycophenolic acid"}),
        (["ciclosporin, then cyclosporine"], {"thiopurines": "ciclosporin"}),  # the first name found
    ],
)  # fmt: skip
def test_drug_names_are_found_as_whole_words_ignoring_case(texts, found):
    index = NameIndex(
        {
            "thiopurines": ["azathioprine", "cyclosporine", "ciclosporin"],
            "antimetabolites": ["mycophenolate", "mycophenolic acid"],
        }
    )
    assert index.find(texts) == found


# --- a call does no more work when cards/ grows ---------------------------------------------------------
EXTRA = 40  # groups of each kind added; each value set also gets 5 x EXTRA more codes


def grown(cards: Path, into: Path) -> Path:
    """A copy of cards/ with EXTRA more condition, vaccine and drug groups (codes no fixture uses, drug
    names no fixture writes), 5 x EXTRA more ICD-10-CM codes and prefixes in every value set and EXTRA
    more words for each coded lab answer. Drug
    names are looked up by runs of words as long as the longest name, so the added names are no longer
    than the shipped ones (two words)."""
    shutil.copytree(cards, into)
    extra_icd = "".join(
        f'\n[[include]]\nsystem = "{codes.ICD10CM}"\n{kind} = "{code}"\ndisplay = "unused {n}"\n'
        for n in range(EXTRA)
        for kind, code in (
            ("code", f"V{n:02d}.1"),
            ("code", f"V{n:02d}.2"),
            ("code", f"W{n:02d}"),
            ("prefix", f"X{n:02d}."),
            ("prefix", f"Y{n:02d}"),
        )
    )
    for path in (into / "valuesets").glob("*.toml"):
        path.write_text(path.read_text() + extra_icd)
    groups = {"conditions": "", "vaccines": "", "medications": ""}
    for n in range(EXTRA):
        (into / "valuesets" / f"extra_{n}.toml").write_text(
            f'name = "extra_{n}"\ntitle = "extra {n}"\n[[include]]\nsystem = "{codes.CVX}"\n'
            f'code = "{900 + n}"\ndisplay = "unused vaccine {n}"\n'
        )
        groups["conditions"] += (
            f'\n[groups.extra_{n}]\nlabel = "extra {n}"\nvalueset = "extra_{n}"\ncounts = "current"\n'
        )
        groups["vaccines"] += f'\n[groups.extra_{n}]\nlabel = "extra {n}"\nvalueset = "extra_{n}"\n'
        groups["medications"] += (
            f'\n[groups.extra_{n}]\nlabel = "extra {n}"\nvalueset = "extra_{n}"\n'
            f'names = ["unuseddrug{n}", "unused drug{n}"]\nbasis = "project-reading"\n'
        )
    for name, added in groups.items():
        path = into / f"{name}.toml"
        path.write_text(path.read_text() + added)
    labs = into / "labs.toml"
    for meaning in ("positive", "negative", "indeterminate"):
        extra_words = "".join(f', "unused {meaning} word {n}"' for n in range(EXTRA))
        labs.write_text(
            re.sub(rf"^({meaning}_words = \[.*)\]$", rf"\1{extra_words}]", labs.read_text(), flags=re.M)
        )
    return into


def calls_made(client, requests: list[tuple[str, dict]]) -> int:
    """Python and C function calls made by the app while answering ``requests``.

    A database wait (``StoreDeadline.run``) counts as one call: it waits on another thread, and how many
    calls the waiting takes varies with that thread's timing, not with what cards/ holds."""
    count = 0
    waiting: object = None

    def profile(frame, event, arg):
        nonlocal count, waiting
        if waiting is not None:
            if event == "return" and frame is waiting:
                waiting = None
            return
        if event in ("call", "c_call"):
            count += 1
            if event == "call" and frame.f_code is StoreDeadline.run.__code__:
                waiting = frame

    for path, body in requests:  # once to warm up: first-use caches are not per call
        assert client.post(path, json=body).status_code == 200
    gc.collect()  # finalizers of earlier tests' garbage would otherwise be counted
    gc.disable()
    sys.setprofile(profile)
    try:
        for path, body in requests:
            client.post(path, json=body)
    finally:
        sys.setprofile(None)
        gc.enable()
    return count


def test_a_call_does_no_more_work_when_cards_grows(tmp_path):
    shipped = Settings().content_dir
    today = utc_today()
    requests = [
        (f"/cds-services/baricitinib-{hook}", rolled_to(hook_request(hook, patient, orders), today))
        for hook, patient, orders in [
            ("order-select", "sle-baseline", ["baricitinib-4mg"]),
            ("order-sign", "combo-several", ["baricitinib-2mg"]),
            ("order-select", "infection-several", ["baricitinib-4mg"]),
            ("order-select", "infection-hbsag-reactive-text", ["baricitinib-4mg"]),  # a coded answer in words
            ("patient-view", "sle-on-baricitinib", []),
        ]
    ]
    counts = []
    for name, cards in [("shipped", shipped), ("grown", grown(shipped, tmp_path / "grown"))]:
        app = create_app(Settings(content_dir=cards, database_url=f"sqlite:///{tmp_path / name}.sqlite3"))
        content = app.extensions["cds_runtime"].content
        assert len(content.conditions.groups) >= (EXTRA if name == "grown" else 1)
        counts.append(calls_made(app.test_client(), requests))
    assert counts[0] == counts[1], f"calls made: shipped content {counts[0]}, grown content {counts[1]}"
