"""Derive the Synthea R4 fixture corpus in this folder from a mirror of smart-on-fhir/generated-sample-data.

    python fhir_fixtures/synthea/derive.py <git-dir> [--count N] [--per-code-cap C] [--rev REV]

<git-dir> is a bare clone (or any git directory) of https://github.com/smart-on-fhir/generated-sample-data.
The script reads R4/SYNTHEA/*.json at REV (default HEAD) with `git cat-file`, needs no work tree, skips blobs
the mirror lacks, and writes one FHIR `collection` Bundle per chosen patient to `<patient-id>.json` beside
this file. Every kept resource is copied exactly as Synthea wrote it; only whole resources are dropped.
Standard library only. Output is deterministic for a given REV, N and C. See README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_DIR = "R4/SYNTHEA"
LOINC = "http://loinc.org"

# Resource types the service reads; everything else in a Synthea bundle is dropped.
KEEP_TYPES = ("Patient", "Observation", "Condition", "Immunization", "MedicationRequest", "Medication")

# LOINC codes a lab/medication reader cares about. Used only to choose patients (coverage), never to filter.
FEATURE_CODES = {
    "egfr": ("33914-3", "48642-3", "48643-1", "62238-1", "69405-9", "98979-8"),
    "creatinine": ("2160-0", "38483-4"),
    "cbc": ("6690-2", "26464-8", "751-8", "26499-4", "753-4", "770-8", "731-0", "26474-7", "718-7"),
    "liver": ("1742-6", "1920-8"),
    "lipids": ("2093-3", "2085-9", "13457-7", "18262-6", "2089-1", "2571-8"),
    "other": ("72166-2",),
}
ALL_FEATURE_CODES = tuple(c for codes in FEATURE_CODES.values() for c in codes)
# A patient in the preferred tier has all of these.
PREFERRED = ("egfr", "creatinine", "cbc", "immunization", "medication_request")
PREFERRED_SHARE = 0.75  # of N, taken by stride from the preferred tier; the rest by stride from everybody else

SIZE_LIMIT = 8_000_000  # bytes, the whole folder (fixtures, this script, README.md)
FIXTURE_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json$")


def git(git_dir: str, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", git_dir, *args], capture_output=True, check=True).stdout


def list_blobs(git_dir: str, rev: str) -> list[tuple[str, str]]:
    """(path, blob sha) of every *.json under R4/SYNTHEA, sorted by path (bytewise, UTF-8)."""
    out = git(git_dir, "ls-tree", "-r", "-z", rev, "--", SOURCE_DIR)
    rows = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, path = record.split(b"\t", 1)
        _mode, kind, sha = meta.split()
        if kind == b"blob" and path.endswith(b".json"):
            rows.append((path, sha.decode()))
    rows.sort()
    return [(p.decode("utf-8"), sha) for p, sha in rows]


class BlobReader:
    """One `git cat-file --batch` process; returns None for blobs the mirror does not hold."""

    def __init__(self, git_dir: str) -> None:
        self.proc = subprocess.Popen(
            ["git", "--git-dir", git_dir, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def read(self, sha: str) -> bytes | None:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(sha.encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if header[-1] == b"missing":
            return None
        size = int(header[2])
        data = self.proc.stdout.read(size)
        self.proc.stdout.read(1)  # the newline after the content
        return data

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait()


def first_loinc(resource: dict) -> str | None:
    code = resource.get("code")
    if not isinstance(code, dict):
        return None
    for coding in code.get("coding") or ():
        if isinstance(coding, dict) and coding.get("system") == LOINC and isinstance(coding.get("code"), str):
            return coding["code"]
    return None


def _instant(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(value[:10])
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


MIN_TIME = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def observation_time(resource: dict) -> dt.datetime:
    """effectiveDateTime, else effectivePeriod.start/end, else effectiveInstant, else issued."""
    period = resource.get("effectivePeriod") if isinstance(resource.get("effectivePeriod"), dict) else {}
    for value in (
        resource.get("effectiveDateTime"),
        period.get("start"),
        period.get("end"),
        resource.get("effectiveInstant"),
        resource.get("issued"),
    ):
        when = _instant(value)
        if when is not None:
            return when
    return MIN_TIME


def features(bundle: dict) -> tuple[str | None, set[str]]:
    """(patient id, features) of a source bundle; id None if the bundle holds no Patient."""
    patient_id = None
    found: set[str] = set()
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") or {}
        kind = resource.get("resourceType")
        if kind == "Patient" and patient_id is None:
            patient_id = resource.get("id")
        elif kind == "Observation":
            code = first_loinc(resource)
            if code in ALL_FEATURE_CODES:
                found.add(code)
        elif kind == "Immunization":
            found.add("immunization")
        elif kind == "MedicationRequest":
            found.add("medication_request")
    for group, codes in FEATURE_CODES.items():
        if found.intersection(codes):
            found.add(group)
    return patient_id, found


def derive_bundle(bundle: dict, per_code_cap: int) -> tuple[dict, dict]:
    """The collection Bundle of the kept entries (Synthea's order, fullUrl and resource untouched) and counts."""
    entries = [e for e in bundle.get("entry") or () if (e.get("resource") or {}).get("resourceType") in KEEP_TYPES]
    by_code: dict[str, list[tuple[dt.datetime, int]]] = {}
    drop: set[int] = set()
    for index, entry in enumerate(entries):
        resource = entry["resource"]
        if resource["resourceType"] != "Observation":
            continue
        code = first_loinc(resource)
        if code is None:
            drop.add(index)  # no LOINC coding: nothing the service could match
        else:
            by_code.setdefault(code, []).append((observation_time(resource), index))
    capped = 0
    for items in by_code.values():
        items.sort(key=lambda item: (item[0], item[1]), reverse=True)  # newest first; later entry wins a tie
        for _when, index in items[per_code_cap:]:
            drop.add(index)
            capped += 1
    kept = []
    counts: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if index in drop:
            continue
        kept.append({"fullUrl": entry["fullUrl"], "resource": entry["resource"]})
        kind = entry["resource"]["resourceType"]
        counts[kind] = counts.get(kind, 0) + 1
    counts["observations_over_cap"] = capped
    return {"resourceType": "Bundle", "type": "collection", "entry": kept}, counts


def stride_pick(candidates: list[str], k: int, taken: set[str]) -> list[str]:
    """k items at evenly spaced positions of candidates, stepping forward past any already taken."""
    free = [c for c in candidates if c not in taken]
    if k <= 0 or not free:
        return []
    if k >= len(free):
        return free
    return [free[(i * len(free)) // k] for i in range(k)]


def choose(catalogue: list[tuple[str, str, set[str]]], count: int) -> list[str]:
    """Patient ids: first the earliest patient for each feature nobody chosen has yet, then a stride through
    the patients who have every PREFERRED feature, then a stride through the others."""
    chosen: list[str] = []
    taken: set[str] = set()
    have: set[str] = set()

    def take(pid: str, feats: set[str]) -> None:
        chosen.append(pid)
        taken.add(pid)
        have.update(feats)

    by_id = {pid: feats for _path, pid, feats in catalogue}
    coverage = list(ALL_FEATURE_CODES) + ["immunization", "medication_request"]
    for feature in coverage:
        if len(chosen) >= count:
            break
        if feature in have:
            continue
        for _path, pid, feats in catalogue:
            if feature in feats and pid not in taken:
                take(pid, feats)
                break
    preferred = [pid for _path, pid, feats in catalogue if all(f in feats for f in PREFERRED)]
    others = [pid for _path, pid, feats in catalogue if not all(f in feats for f in PREFERRED)]
    preferred_set = set(preferred)
    want_preferred = max(0, round(count * PREFERRED_SHARE) - sum(1 for p in chosen if p in preferred_set))
    for pid in stride_pick(preferred, min(want_preferred, count - len(chosen)), taken):
        take(pid, by_id[pid])
    for pid in stride_pick(others, count - len(chosen), taken):
        take(pid, by_id[pid])
    if len(chosen) < count:  # too few others: top up from the preferred tier
        for pid in stride_pick(preferred, count - len(chosen), taken):
            take(pid, by_id[pid])
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("git_dir", help="git directory of smart-on-fhir/generated-sample-data")
    parser.add_argument("--count", type=int, default=35, help="patients to write (default 35; 36 to 40 go over 8 MB)")
    parser.add_argument("--per-code-cap", type=int, default=30, help="newest Observations kept per LOINC code (default 30)")
    parser.add_argument("--rev", default="HEAD", help="commit to read (default HEAD)")
    parser.add_argument("--out", default=str(HERE), help="output folder (default: this script's folder)")
    args = parser.parse_args(argv)

    commit = git(args.git_dir, "rev-parse", "--verify", args.rev + "^{commit}").decode().strip()
    blobs = list_blobs(args.git_dir, commit)
    reader = BlobReader(args.git_dir)
    catalogue: list[tuple[str, str, set[str]]] = []
    missing = no_patient = 0
    for path, sha in blobs:
        data = reader.read(sha)
        if data is None:
            missing += 1
            continue
        patient_id, feats = features(json.loads(data))
        if patient_id is None:
            no_patient += 1  # hospitalInformation*.json, practitionerInformation*.json
            continue
        catalogue.append((path, patient_id, feats))
    chosen = choose(catalogue, args.count)
    chosen_set = set(chosen)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():
        if FIXTURE_NAME.match(stale.name) and stale.stem not in chosen_set:
            stale.unlink()
    totals: dict[str, int] = {}
    sha_of = dict(blobs)
    for path, pid, _feats in catalogue:
        if pid not in chosen_set:
            continue
        data = reader.read(sha_of[path])
        assert data is not None
        bundle, counts = derive_bundle(json.loads(data), args.per_code_cap)
        text = json.dumps(bundle, ensure_ascii=False, separators=(",", ":")) + "\n"
        (out / f"{pid}.json").write_text(text, encoding="utf-8")
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
    reader.close()

    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"commit {commit}")
    print(f"source: {len(blobs)} files, {missing} absent from the mirror, {no_patient} without a Patient, "
          f"{len(catalogue)} patients")
    print(f"wrote {len(chosen)} patients (--count {args.count}, --per-code-cap {args.per_code_cap}) to {out}")
    print("kept: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    print(f"folder size {size} bytes ({size / 1048576:.2f} MiB)", flush=True)
    if size >= SIZE_LIMIT:
        print("folder is over 8,000,000 bytes: lower --count or --per-code-cap", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
