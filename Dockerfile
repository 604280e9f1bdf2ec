# One image for every Peerlink process. The command picks the process:
#   peerlink topics create | peerlink migrate | peerlink api SERVICE | peerlink worker SERVICE
# No secrets are baked in: they arrive at run time as files (compose/Kubernetes secrets)
# named by PEERLINK_<SERVICE>_CLIENT_SECRET_FILE (screening, mentoring), PEERLINK_MASTER_KEY_FILE
# (consent) and PEERLINK_MENTORING_RECORDS_KEY_FILE (mentoring). No process signs tokens.
# .dockerignore keeps deploy/secrets out of the build context altogether.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# builder: locked dependencies, then the project itself (--no-deps), into /opt/venv
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler only for the odd dependency without a wheel on this platform (e.g. arm64 hosts).
# It stays in this stage; the runtime image never sees it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, so this layer is cached until the lock file changes.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
COPY ops ./ops
RUN pip install --no-deps . \
    && pip check

# ---------------------------------------------------------------------------------------------
# runtime: the venv and nothing else, as an unprivileged user
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PEERLINK_ENV=production \
    PEERLINK_HTTP_HOST=0.0.0.0 \
    PEERLINK_WORKER_HOST=0.0.0.0

RUN groupadd --system --gid 10001 peerlink \
    && useradd --system --uid 10001 --gid peerlink --home-dir /home/peerlink --create-home \
       --shell /usr/sbin/nologin peerlink \
    && mkdir -p /var/lib/peerlink \
    && chown peerlink:peerlink /var/lib/peerlink

COPY --from=builder /opt/venv /opt/venv

# Working directory owned by the service user: faust's data directory (<app id>-data) and the
# default SQLite files (var/) land here when no PEERLINK_<SERVICE>_DATABASE_URL is set; compose
# and Kubernetes always set one, run the root filesystem read-only and mount an in-memory
# volume here and on /tmp. No process keeps state on local disk: the reporting read model is
# in the reporting database.
WORKDIR /var/lib/peerlink
USER 10001:10001

# APIs: 8101 screening, 8102 consent, 8103 mentoring, 8104 reporting.
# Workers (/healthz, /readyz, /metrics): 8201 screening, 8202 consent, 8203 mentoring, 8204 reporting.
EXPOSE 8101 8102 8103 8104 8201 8202 8203 8204

ENTRYPOINT ["peerlink"]
CMD ["--help"]
