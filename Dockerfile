# syntax=docker/dockerfile:1
#
# Facade image: gunicorn + gevent serving wsgi:app on port 8000, as a non-root user.
#   docker build -t facade:1.0.0 .
#   docker run --rm -p 8000:8000 facade:1.0.0          # demo config, SQLite in the container
# Kubernetes manifests: deploy/kubernetes (see deploy/README.md).
#
# For reproducible builds pin the base by digest, e.g. python:3.11-slim@sha256:<digest>, in
# both stages (and let your dependency bot move it).

############################################################################################
# Stage 1, build: install the pinned requirements into a virtualenv. Compilers live only here,
# for the odd dependency without a wheel for the target platform; none reach the final image.
############################################################################################
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv

# Only the requirements first, so this layer is rebuilt when they change, not on every edit.
# Every line of requirements.txt is pinned with == (tests/deploy/test_dockerfile.py checks).
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --prefer-binary -r /tmp/requirements.txt

############################################################################################
# Stage 2, runtime: the slim interpreter, the virtualenv and the application code. Nothing else.
############################################################################################
FROM python:3.11-slim AS runtime

# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only under Kubernetes; bytecode is
#   compiled at build time below instead.
# FACADE_DATABASE_URL: SQLite on /var/lib/facade, the one place meant for a volume. The
#   Kubernetes overlays set it explicitly (overlays/ha: PostgreSQL from a Secret).
# PROMETHEUS_MULTIPROC_DIR: per-worker metric files, summed by /metrics.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FACADE_BIND=0.0.0.0:8000 \
    FACADE_DATABASE_URL=sqlite:////var/lib/facade/facade.db \
    PROMETHEUS_MULTIPROC_DIR=/tmp/facade-metrics

# A fixed numeric uid/gid (10001), matching runAsUser/runAsGroup/fsGroup in the Deployment.
RUN groupadd --system --gid 10001 facade \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin facade \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/facade \
 && install -d -o 10001 -g 10001 -m 0700 /tmp/facade-metrics

COPY --from=build /opt/venv /opt/venv

# The code stays owned by root: the app user can read it, not change it.
WORKDIR /app
COPY gunicorn.conf.py wsgi.py ./
COPY facade/ ./facade/
RUN python -m compileall -q /app

USER 10001:10001
EXPOSE 8000

# Exec form: gunicorn is PID 1 and gets Kubernetes' SIGTERM itself, which starts its graceful
# drain (FACADE_GRACEFUL_TIMEOUT_S).
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
