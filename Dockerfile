# syntax=docker/dockerfile:1
# vault: a small image that runs `vault serve` (gunicorn) as an unprivileged user on a read-only
# root file system. Build: docker build -t vault . ; run it with deploy/compose.yaml.
#
# The install itself is one script, scripts/install-vault, which the test suite also runs
# (tests/test_deploy.py): the image and CI install vault the same way. The rules this file
# keeps (two stages, slim base, non-root, no build tools, HEALTHCHECK, no baked-in secrets) are
# checked by parsing it in tests/test_deploy.py.

# -- build: a virtualenv in /opt/vault with vault and its pinned dependencies --------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY vault ./vault
COPY scripts/install-vault ./scripts/install-vault
# Every dependency ships a manylinux wheel: no compiler is needed, none is installed. No extra:
# the image runs against Redis, so the embedded demo's store (vault[demo], fakeredis) stays out.
RUN scripts/install-vault --strip /opt/vault /src

# -- run: the base image, the virtualenv, nothing else ------------------------------------------
FROM python:3.11-slim-bookworm
# The same path as in the build stage (a virtualenv is not relocatable).
COPY --from=build /opt/vault /opt/vault
# prometheus-client's multiprocess files go under /tmp, the only writable place (a tmpfs).
ENV PATH=/opt/vault/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VAULT_ENV=production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/vault-metrics
# No account files needed: a numeric user and group that own nothing in the image.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
# python, not curl (the slim image has none): liveness is /healthz answering 200.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["vault"]
CMD ["serve", "--bind", "0.0.0.0:8000"]
