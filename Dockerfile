# The image behind docker-compose.yml's code-server, webserver and daemon. Not built on the
# development machines (no Docker engine there); see README, "What is tested".
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/ozi
# CPU build of torch first, so nothing pulls CUDA wheels.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY ozi_assets ozi_assets
COPY ozi_resources ozi_resources
RUN pip install --no-cache-dir . dagster-postgres
ENV DAGSTER_HOME=/opt/dagster/home HF_HUB_OFFLINE=1
COPY deploy/dagster.docker.yaml /opt/dagster/home/dagster.yaml
COPY deploy/workspace.docker.yaml /opt/dagster/workspace.docker.yaml
