# The image behind docker-compose.yml's code-server, webserver, daemon and api. Not built on the
# development machines (no Docker engine there); see README, "What is tested".
# Runtime dependencies only: every one is a binary wheel, so there is no compiler in the image
# (the test-only LLM server, which builds from source, is a development extra).
FROM python:3.11-slim
WORKDIR /opt/ozi
# CPU build of torch first, so nothing pulls CUDA wheels.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY ozi_assets ozi_assets
COPY ozi_resources ozi_resources
RUN pip install --no-cache-dir .
ENV DAGSTER_HOME=/opt/dagster/home HF_HUB_OFFLINE=1
COPY deploy/dagster.docker.yaml /opt/dagster/home/dagster.yaml
COPY deploy/workspace.docker.yaml /opt/dagster/workspace.docker.yaml
