# Same steps as the README's install: a virtualenv, `pip install -e .`, `cds-service serve`.
# psycopg's binary wheel needs no compiler, so the image carries no build tools.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CDS_HOST=0.0.0.0 CDS_PORT=8080 CDS_WORKERS=2 CDS_THREADS=32 \
    CDS_DATABASE_URL=sqlite:////data/cds.sqlite3 \
    CDS_PATIENT_KEY_SECRET_FILE=/data/patient-key.secret

RUN useradd --create-home --uid 10001 cds && mkdir -p /app /data && chown cds:cds /app /data
WORKDIR /app
COPY --chown=cds:cds pyproject.toml README.md ./
COPY --chown=cds:cds cds_service ./cds_service
COPY --chown=cds:cds cards ./cards
COPY --chown=cds:cds fhir_fixtures ./fhir_fixtures

USER cds
RUN python -m venv /app/.venv && /app/.venv/bin/pip install --no-cache-dir -e .
ENV PATH=/app/.venv/bin:$PATH

EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"

CMD ["cds-service", "serve"]
