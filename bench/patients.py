"""Seeded synthetic patients for the benchmark: years of labs, as an EHR would prefetch them.

``hook_request(n_observations, content, today, seed)`` returns a complete order-select request (or another
hook's) for an SLE patient with
``n_observations`` lab Observations spread over years (the LOINC codes and units of ``cards/labs.toml``,
mixed units, referenceRanges, a few entered-in-error and a few preliminary results), plus conditions,
immunizations, active and stopped medications (one through a referenced Medication) and a draft
baricitinib 4 mg order. Dates are relative to ``today`` so the newest results are current. Nothing is
written to disk: the same seed gives the same request.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cds_service import codes
from cds_service.content import Content
from cds_service.fixtures import wrap_request

Json = dict[str, Any]

UCUM = codes.UCUM
LAB_CATEGORY = [
    {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
        ]
    }
]

# Typical value in each lab's canonical unit (cards/labs.toml), a spread, and how often it is ordered.
QUANTITY_LABS: dict[str, tuple[float, float, int]] = {
    "anc": (3500.0, 1200.0, 10),
    "lymphocytes": (1600.0, 500.0, 10),
    "hemoglobin": (12.5, 1.2, 10),
    "alt": (24.0, 8.0, 6),
    "ast": (26.0, 7.0, 6),
    "creatinine": (0.8, 0.12, 6),
    "egfr": (95.0, 12.0, 4),
    "ldl": (105.0, 20.0, 1),
    "cholesterol_total": (185.0, 25.0, 1),
    "hdl": (58.0, 10.0, 1),
    "triglycerides": (120.0, 35.0, 1),
}
CODED_LABS = {"hbsag": 1, "anti_hbc": 1, "hcv_ab": 1, "igra": 1, "smoking_status": 1}
OTHER_LOINC = [("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 95.0)]  # not read by any rule
SNOMED_NEGATIVE = {
    "system": "http://snomed.info/sct",
    "code": "260385009",
    "display": "Negative (qualifier value)",
}
# The answer a category lab (smoking status) is generated with.
CATEGORY_ANSWER = {"system": "http://snomed.info/sct", "code": "266919005", "display": "Never smoker"}
RXNORM = codes.RXNORM
CVX = codes.CVX
SNOMED = "http://snomed.info/sct"


def _lab_catalogue(content: Content) -> list[tuple[str, list[tuple[str, str]], int]]:
    """(lab key, [(LOINC code, display)], weight) for every lab the content defines (a quantity lab this
    file gives no typical value for is left out)."""
    catalogue = []
    for key, lab in content.labs.labs.items():
        if lab.kind == "quantity" and key not in QUANTITY_LABS:
            continue
        weight = QUANTITY_LABS[key][2] if key in QUANTITY_LABS else CODED_LABS.get(key, 1)
        loinc = [
            (e.code, e.display)
            for e in content.valueset(lab.valueset).include
            if e.system == codes.LOINC and e.code
        ]
        if loinc:
            catalogue.append((key, loinc, weight))
    return catalogue


def _instant(day: datetime) -> str:
    return day.strftime("%Y-%m-%dT%H:%M:%SZ")


def observations(n: int, patient_id: str, content: Content, today: date, rng: random.Random) -> list[Json]:
    catalogue = _lab_catalogue(content)
    weights = [w for _, _, w in catalogue]
    years = 3 + min(n // 2000, 12)  # 100 results over 3 years ... 50,000 over 15 years
    now = datetime(today.year, today.month, today.day, 8, tzinfo=UTC)
    found: list[Json] = []
    for i in range(n):
        age_days = (i / max(n - 1, 1)) ** 1.3 * years * 365  # denser recently, the newest a few days old
        effective = now - timedelta(days=age_days + 2, minutes=rng.randrange(0, 600))
        if rng.random() < 0.02:
            code, display, unit, value = OTHER_LOINC[0]
            found.append(
                _quantity_obs(f"obs-{i}", patient_id, code, display, effective, value, unit, None, "final")
            )
            continue
        key, loinc, _ = rng.choices(catalogue, weights)[0]
        code, display = loinc[0] if rng.random() < 0.85 else rng.choice(loinc)
        lab = content.labs.labs[key]
        status = (
            "entered-in-error" if rng.random() < 0.005 else "preliminary" if rng.random() < 0.01 else "final"
        )
        if lab.kind in ("coded", "category"):
            answer = SNOMED_NEGATIVE if lab.kind == "coded" else CATEGORY_ANSWER
            resource = {
                "resourceType": "Observation",
                "id": f"obs-{i}",
                "status": status,
                "category": LAB_CATEGORY,
                "code": {"coding": [{"system": codes.LOINC, "code": code, "display": display}]},
                "subject": {"reference": f"Patient/{patient_id}"},
                "effectiveDateTime": _instant(effective),
                "issued": _instant(effective + timedelta(hours=6)),
                "valueCodeableConcept": {"coding": [answer], "text": answer["display"]},
            }
            found.append(resource)
            continue
        typical, spread, _ = QUANTITY_LABS[key]
        unit = lab.canonical_unit if rng.random() < 0.6 else rng.choice(sorted(lab.units))
        value = round(max(typical + rng.gauss(0, spread), typical * 0.3) / lab.units[unit], 3)
        high = None
        if key in ("alt", "ast"):
            high = round(40 / lab.units[unit], 3), unit
        found.append(
            _quantity_obs(f"obs-{i}", patient_id, code, display, effective, value, unit, high, status)
        )
    rng.shuffle(found)  # EHRs are asked for -date but the service must not rely on it
    return found


def _quantity_obs(
    rid: str,
    patient_id: str,
    code: str,
    display: str,
    effective: datetime,
    value: float,
    unit: str,
    high: tuple[float, str] | None,
    status: str,
) -> Json:
    resource: Json = {
        "resourceType": "Observation",
        "id": rid,
        "meta": {"lastUpdated": _instant(effective + timedelta(hours=6))},
        "status": status,
        "category": LAB_CATEGORY,
        "code": {
            "coding": [{"system": codes.LOINC, "code": code, "display": display}],
            "text": display.split(" [")[0],
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": _instant(effective),
        "issued": _instant(effective + timedelta(hours=6)),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }
    if high:
        resource["referenceRange"] = [
            {"high": {"value": high[0], "unit": high[1], "system": UCUM, "code": high[1]}}
        ]
    return resource


def _condition(
    rid: str, patient_id: str, code: str, display: str, recorded: date, clinical: str = "active"
) -> Json:
    return {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}
            ]
        },
        "verificationStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient_id}"},
        "recordedDate": recorded.isoformat(),
    }


def conditions(patient_id: str, today: date) -> list[Json]:
    years = lambda n: today - timedelta(days=365 * n)  # noqa: E731
    return [
        _condition("sle", patient_id, "55464009", "Systemic lupus erythematosus", years(9)),
        _condition("htn", patient_id, "38341003", "Hypertensive disorder", years(4)),
        _condition("raynaud", patient_id, "266261006", "Raynaud's phenomenon", years(8)),
        _condition("alopecia-nonscarring", patient_id, "278040002", "Loss of hair", years(3), "resolved"),
        _condition("uti", patient_id, "68566005", "Urinary tract infectious disease", years(2), "resolved"),
        _condition("osteopenia", patient_id, "312894000", "Osteopenia", years(1)),
    ]


def immunizations(patient_id: str, today: date) -> list[Json]:
    doses = [("140", "Influenza, split virus, trivalent, PF", today.year - y, 10, 1) for y in range(0, 8)]
    doses += [
        ("309", "COVID-19 mRNA 30 mcg/0.3 mL", today.year - 1, 10, 1),
        ("216", "Pneumococcal conjugate PCV20", today.year - 2, 6, 1),
    ]
    doses += [
        ("187", "Zoster vaccine recombinant", today.year - 2, 3, 1),
        ("187", "Zoster vaccine recombinant", today.year - 2, 5, 1),
    ]
    found = []
    for i, (cvx, display, year, month, day) in enumerate(doses):
        when = min(date(year, month, day), today - timedelta(days=30))
        found.append(
            {
                "resourceType": "Immunization",
                "id": f"imm-{i}",
                "status": "completed",
                "vaccineCode": {"coding": [{"system": CVX, "code": cvx, "display": display}]},
                "patient": {"reference": f"Patient/{patient_id}"},
                "occurrenceDateTime": when.isoformat(),
            }
        )
    return found


def _med_request(
    rid: str,
    patient_id: str,
    status: str,
    authored: date,
    concept: Json | None = None,
    reference: str | None = None,
    per_day: int = 1,
) -> Json:
    resource: Json = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": authored.isoformat(),
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {"doseQuantity": {"value": 1, "unit": "tablet", "system": UCUM, "code": "{tablet}"}}
                ],
            }
        ],
    }
    if concept is not None:
        resource["medicationCodeableConcept"] = concept
    else:
        resource["medicationReference"] = {"reference": reference}
    return resource


def medications(patient_id: str, today: date) -> list[Json]:
    def rx(code: str, text: str) -> Json:
        return {"coding": [{"system": RXNORM, "code": code, "display": text}], "text": text}

    return [
        _med_request(
            "hcq",
            patient_id,
            "active",
            today - timedelta(days=2000),
            rx("979092", "Hydroxychloroquine Sulfate 200 MG Oral Tablet"),
            per_day=2,
        ),
        _med_request(
            "pred",
            patient_id,
            "active",
            today - timedelta(days=400),
            rx("312615", "prednisone 5 MG Oral Tablet"),
        ),
        _med_request(
            "lisinopril",
            patient_id,
            "active",
            today - timedelta(days=1200),
            reference="Medication/lisinopril",
        ),
        _med_request(
            "vitd",
            patient_id,
            "active",
            today - timedelta(days=300),
            rx("316965", "cholecalciferol 1000 UNT Oral Tablet"),
        ),
        _med_request(
            "mtx-old",
            patient_id,
            "stopped",
            today - timedelta(days=2500),
            rx("105586", "methotrexate 2.5 MG Oral Tablet"),
        ),
        {
            "resourceType": "Medication",
            "id": "lisinopril",
            "code": rx("314076", "lisinopril 10 MG Oral Tablet"),
        },
    ]


def draft_baricitinib(patient_id: str, today: date) -> Json:
    return {
        "resourceType": "MedicationRequest",
        "id": "draft-baricitinib",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": today.isoformat(),
        "medicationCodeableConcept": {
            "text": "baricitinib 4 MG Oral Tablet",
            "coding": [{"system": RXNORM, "code": "2047232", "display": "baricitinib"}],
        },
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {"doseQuantity": {"value": 1, "unit": "tablet", "system": UCUM, "code": "{tablet}"}}
                ],
            }
        ],
    }


def searchset(resources: list[Json]) -> Json:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def prefetch(
    n_observations: int, content: Content, today: date, seed: int = 6, patient_id: str = "bench"
) -> Json:
    rng = random.Random(seed * 1_000_003 + n_observations)
    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "gender": "female",
        "birthDate": "1988-04-12",
        "name": [{"family": "Bench", "given": ["Synthetic"]}],
    }
    return {
        "patient": patient,
        "conditions": searchset(conditions(patient_id, today)),
        "observations": searchset(observations(n_observations, patient_id, content, today, rng)),
        "immunizations": searchset(immunizations(patient_id, today)),
        "medications": searchset(medications(patient_id, today)),
    }


def hook_request(
    n_observations: int, content: Content, today: date, seed: int = 6, hook: str = "order-select"
) -> Json:
    """A complete hook request (order-select by default) for a patient with ``n_observations`` labs."""
    patient_id = "bench"
    return wrap_request(
        hook,
        patient_id,
        [draft_baricitinib(patient_id, today)],
        prefetch(n_observations, content, today, seed, patient_id),
        hook_instance=str(uuid.UUID(int=random.Random(seed).getrandbits(128), version=4)),
    )
