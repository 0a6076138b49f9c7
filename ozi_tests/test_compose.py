"""The production compose file, read as data (no Docker engine here, so nothing is started): it
is valid against the Compose Specification's JSON schema, every service is probed and
restarted, state lives on named volumes, nothing pins the partition range, and it agrees with
the Dockerfile and deploy/.

``compose-spec.json`` beside this file is ``schema/compose-spec.json`` of the compose-spec
repository (github.com/compose-spec/compose-spec, commit 170098ba, Apache License 2.0), kept
here because tests never reach the network.
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from ozi_tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
# Services that do one job and exit; the others wait for them to finish, not to be healthy.
ONE_SHOT = {
    name
    for service in SERVICES.values()
    for name, dependency in (service.get("depends_on") or {}).items()
    if dependency.get("condition") == "service_completed_successfully"
}
# Services that keep state, and the folder it lives in inside the container.
STATEFUL = {
    "kafka": "/var/lib/kafka/data",
    "qdrant": "/qdrant/storage",
    "postgres": "/var/lib/postgresql/data",
    "minio": "/data",
    "code-server": "/var/lib/ozi",
    "daemon": "/var/lib/ozi",
}


def named_volumes(service: dict) -> dict[str, str]:
    """{container folder: named volume} of a service (bind mounts left out)."""
    mounts = {}
    for spec in service.get("volumes") or []:
        source, target = spec.split(":")[:2]
        if source in (COMPOSE.get("volumes") or {}):
            mounts[target] = source
    return mounts


def test_the_file_is_valid_compose():
    schema = json.loads((REPO / "ozi_tests" / "compose-spec.json").read_text())
    jsonschema.validate(COMPOSE, schema)
    broken = {**COMPOSE, "services": {**SERVICES, "api": {**SERVICES["api"], "restart": 3}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_health_check_and_a_restart_policy(name):
    service = SERVICES[name]
    check = service.get("healthcheck") or {}
    assert not check.get("disable"), name
    assert isinstance(check.get("test"), list) and check["test"][0] in ("CMD", "CMD-SHELL"), name
    for field in ("interval", "timeout", "retries"):
        assert check.get(field), (name, field)
    expected = "on-failure" if name in ONE_SHOT else "unless-stopped"
    assert service.get("restart") == expected, name


def test_services_wait_for_what_they_need_to_be_healthy():
    for name, service in SERVICES.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for dependency, how in depends.items():
            assert dependency in SERVICES, (name, dependency)
            wanted = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert how.get("condition") == wanted, (name, dependency)


@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_state_lives_on_named_volumes(name):
    assert STATEFUL[name] in named_volumes(SERVICES[name]), name


def test_kafka_keeps_its_log_on_its_own_volume():
    kafka = SERVICES["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    assert named_volumes(kafka).get(log_dirs) == "kafka-data"
    others = {v for n, s in SERVICES.items() if n != "kafka" for v in named_volumes(s).values()}
    assert "kafka-data" not in others


def test_no_partition_range_is_pinned():
    for name, service in SERVICES.items():
        env = service.get("environment") or {}
        if "OZI_PARTITION_START" not in env:
            continue
        # A required variable with no default: the deployment names its first hour.
        assert re.fullmatch(r"\$\{OZI_PARTITION_START:\?[^}]+\}", env["OZI_PARTITION_START"])
        assert env.get("OZI_PARTITION_END") == "", name  # open-ended: a live stream


def test_the_ozi_services_agree_with_the_dockerfile_and_deploy():
    dockerfile = (REPO / "Dockerfile").read_text()
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.docker.yaml").read_text())
    (grpc,) = [entry["grpc_server"] for entry in workspace["load_from"]]
    instance = (REPO / "deploy" / "dagster.docker.yaml").read_text()
    ozi = {name: s for name, s in SERVICES.items() if s.get("image") == "ozi:latest"}
    assert set(ozi) == {"code-server", "webserver", "daemon", "api"}
    # The workspace the webserver and daemon load is in the image and points at the code server.
    assert "COPY deploy/workspace.docker.yaml /opt/dagster/workspace.docker.yaml" in dockerfile
    assert grpc["host"] in SERVICES
    assert f"-p {grpc['port']}" in SERVICES[grpc["host"]]["command"]
    for name in ("webserver", "daemon"):
        assert "-w /opt/dagster/workspace.docker.yaml" in ozi[name]["command"]
    # Every variable the Dagster instance reads is set, and DAGSTER_HOME is the image's.
    for service in ozi.values():
        env = service["environment"]
        for variable in re.findall(r"\{env: (\w+)\}", instance):
            assert variable in env, variable
        assert f"DAGSTER_HOME={env['DAGSTER_HOME']}" in dockerfile
