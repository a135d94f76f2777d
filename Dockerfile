# Product media gateway: `docker build -t media-gateway .`, then
#   docker run -p 8000:8000 -v media-data:/data \
#     -e MEDIA_GATEWAY_PUBLIC_URL=https://media.example.com media-gateway
# PUBLIC_URL is the base of every media URL the API returns; without it the
# URLs are built from the request's Host header. The admin token is printed to the
# log at first start unless MEDIA_GATEWAY_ADMIN_TOKEN is set.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# requirements.lock pins (with hashes) what the service needs at run time only;
# the test and lint tools are in requirements-dev.lock.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
# A regular (not editable) install: the packages, with their Alembic
# migrations and other package data, land in /opt/venv's site-packages.
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY schema ./schema
COPY storage ./storage
RUN pip install --no-deps . \
    && python -I -c "import gateway, schema, storage"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MEDIA_GATEWAY_DATABASE_URL=sqlite+aiosqlite:////data/media.db \
    MEDIA_GATEWAY_MEDIA_ROOT=/data/media
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin gateway \
    && mkdir -p /data/media \
    && chown -R gateway:gateway /data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /data
# The `gateway` user, by number so that a runtime can check it is not root.
USER 10001:10001
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["media-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
