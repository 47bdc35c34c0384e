#!/usr/bin/env bash
# Bounded load test, run by hand (not in the test suite): `cds-service serve` (gunicorn) on loopback with
# authentication on, locust sending hook calls and feedback posts for DURATION, then the feedback rows in
# the database counted against the items the service acknowledged. Prints calls/s, p50/p99, errors and
# lost rows. Needs the load extra: .venv/bin/pip install -e '.[test,load]'
#
#   loadtest/run.sh                         # 30 s, 20 users, 2 workers, SQLite in a temporary folder
#   DURATION=60s USERS=50 WORKERS=4 LOAD_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/test loadtest/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-30s}"
USERS="${USERS:-20}"
SPAWN_RATE="${SPAWN_RATE:-10}"
PORT="${PORT:-8093}"
WORKERS="${WORKERS:-2}"
PY=.venv/bin/python
WORK="$(mktemp -d)"

# A client key pair and a trusted-clients file: the service checks a signed JWT on every call, as in production.
"$PY" - "$WORK" <<'PYEOF'
import json, sys
from pathlib import Path
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
work = Path(sys.argv[1])
key = ec.generate_private_key(ec.SECP384R1())
(work / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "load", "alg": "ES384", "use": "sig"}
(work / "clients.json").write_text(json.dumps({"clients": [{"issuer": "https://load.example", "jwks": {"keys": [jwk]}}]}))
PYEOF

export CDS_DATABASE_URL="${LOAD_DATABASE_URL:-sqlite:///$WORK/cds.sqlite3}"
export CDS_TRUSTED_CLIENTS="$WORK/clients.json" CDS_HOST=127.0.0.1 CDS_PORT="$PORT" CDS_WORKERS="$WORKERS"
export CDS_LOG_LEVEL=WARNING

count_feedback() {
  "$PY" -c 'import sys; from sqlalchemy import create_engine, text
from cds_service.feedback_store import FeedbackStore
store = FeedbackStore(sys.argv[1])
with store.engine.connect() as c: print(c.execute(text("SELECT count(*) FROM card_feedback")).scalar())
store.dispose()' "$CDS_DATABASE_URL"
}
BEFORE="$(count_feedback)"

.venv/bin/cds-service serve 2>"$WORK/server.log" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "service did not start:"; cat "$WORK/server.log"; exit 1; }

LOAD_KEY="$WORK/key.pem" LOAD_ISSUER="https://load.example" LOAD_KID=load LOAD_RESULT="$WORK/result.json" \
  .venv/bin/locust -f loadtest/locustfile.py --headless --users "$USERS" --spawn-rate "$SPAWN_RATE" \
  --run-time "$DURATION" --stop-timeout 10 --host "http://127.0.0.1:$PORT" --csv "$WORK/locust" --only-summary \
  --loglevel WARNING >"$WORK/locust.out" 2>&1 || true   # locust exits 1 when any request failed: reported below

AFTER="$(count_feedback)"
"$PY" - "$WORK" "$BEFORE" "$AFTER" "$DURATION" "$USERS" "$WORKERS" "$CDS_DATABASE_URL" <<'PYEOF'
import csv, json, sys
from collections import Counter
from pathlib import Path
from sqlalchemy import select
from cds_service.feedback_store import FeedbackStore, card_feedback
work, before, after, duration, users, workers, db = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
rows = {r["Name"]: r for r in csv.DictReader(open(work / "locust_stats.csv"))}
result = json.loads((work / "result.json").read_text())
stored = after - before
store = FeedbackStore(db)
with store.engine.connect() as connection:
    in_db = Counter(uuid for (uuid,) in connection.execute(select(card_feedback.c.card_uuid)))
store.dispose()
lost = sum((Counter(result["cards"]) - in_db).values())  # acknowledged, yet no row
print(f"load: {duration}, {users} users, gunicorn {workers} workers, {db.split('://')[0]}, JWT on every call")
for name, row in rows.items():
    print(f"  {name:58} {int(row['Request Count']):7d} calls {float(row['Requests/s']):8.1f}/s  "
          f"p50 {row['50%']:>5} ms  p99 {row['99%']:>5} ms  errors {row['Failure Count']}")
failures = list(csv.DictReader(open(work / "locust_failures.csv")))
for failure in failures:
    print(f"  error: {failure['Method']} {failure['Name']}: {failure['Error']} x{failure['Occurrences']}")
print(f"feedback: {result['feedback_items']} items acknowledged, {stored} rows added, lost rows {lost}")
sys.exit(1 if failures or lost else 0)
PYEOF
