# syntax=docker/dockerfile:1
# One image for every Wenming Cloud service; the command picks the service:
#
#   docker build -t wenming-cloud:0.1.0 .
#   docker run --read-only --tmpfs /tmp wenming-cloud:0.1.0 python -m services.ordering
#
# The chart (charts/wenming) runs each service as `python -m services.<name>` with a read-only
# root filesystem, an emptyDir on /tmp and uid 10001.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- web: the app (Vue + Vant), exactly as the lockfile pins it; the gateway serves build/web ----
FROM ${NODE_IMAGE} AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# ---- build: dependencies into a virtualenv, protobuf code generated like `make protos` ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src

COPY requirements.txt requirements-dev.txt ./
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt
# grpc_tools only here, pinned as in requirements-dev.txt; it never reaches the final image
RUN python -m venv /opt/protoc \
 && /opt/protoc/bin/pip install "$(grep -E '^grpcio-tools==' requirements-dev.txt)"

COPY protos/ protos/
RUN mkdir -p /out/app/build/protos/python \
 && /opt/protoc/bin/python -m grpc_tools.protoc -I protos \
      --python_out=/out/app/build/protos/python --pyi_out=/out/app/build/protos/python \
      --grpc_python_out=/out/app/build/protos/python $(find protos -name '*.proto')

COPY services/ /out/app/services/
COPY --from=web /src/build/web /out/app/build/web
# bytecode compiled now: the root filesystem is read-only at run time
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /out/app

# ---- runtime ----
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="wenming-cloud" \
      org.opencontainers.image.description="Wenming Cloud (文明云) services: python -m services.<name>"

# the CJK font PDF certificates and scorecards embed (services/common/pdf.py: CJK_FONT_PATH's default)
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 wenming \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin wenming

COPY --from=build /opt/venv /opt/venv
COPY --from=build /out/app /app

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/build/protos/python \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    GRPC_PORT=50051 \
    HTTP_PORT=8080

WORKDIR /app
USER 10001:10001
EXPOSE 50051 8080
CMD ["python", "-m", "services.registration"]
