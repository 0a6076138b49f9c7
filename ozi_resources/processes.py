"""Long-running helper processes of the embedded defaults (the broker, the vector owner).

Each listens on loopback on a free port; its pid and port live in ``$OZI_HOME/<name>.json`` so
every Ozi process (CLI, Dagster daemon, webserver) finds the same one, and its output goes to
``$OZI_HOME/<name>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


class ProcessError(RuntimeError):
    """A helper process could not be started or reached."""


@dataclass(frozen=True)
class ProcessState:
    pid: int
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    """True while the process runs (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def owns_port(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the listening TCP socket on ``port`` (Linux: from
    /proc/net/tcp* and the process's file descriptors); True where /proc cannot tell."""
    inodes = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{fields[9]}]")
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return True  # no /proc here (or the process is gone): listening is all we know
    for fd in fds:
        with contextlib.suppress(OSError):  # a descriptor closed while we look
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
    return False


def status(home: Path, name: str) -> ProcessState | None:
    """The running process ``name`` of this OZI_HOME, or None when there is none."""
    path = home / f"{name}.json"
    if not path.exists():
        return None
    try:
        state = ProcessState(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None
    if alive(state.pid) and listening(state.port):
        return state
    return None


def start(
    home: Path,
    name: str,
    command: Callable[[int], list[str]],
    timeout_s: float = 20.0,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> ProcessState:
    """Start ``command(port)`` in its own session unless ``name`` already runs; returns its
    pid and port once it listens. ``port``: the one to take when free (a page people
    bookmark), else any free one.

    Raises ProcessError when it exits or does not listen within ``timeout_s`` seconds.
    """
    running = status(home, name)
    if running:
        return running
    home.mkdir(parents=True, exist_ok=True)
    # the preferred port when free, else (or when another process wins it) any free one
    for candidate in ([port] if port and not listening(port) else []) + [None]:
        chosen = candidate or free_port()
        with open(home / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                command(chosen),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives the CLI that started it
                env={**os.environ, **(env or {})},
            )
        deadline = time.monotonic() + timeout_s

        def ready(proc: subprocess.Popen = proc, chosen: int = chosen) -> bool:
            # Someone listening is not enough: another process may have taken the port
            # between the check and the bind (two OZI_HOMEs starting at once), and this one
            # then exits.
            return proc.poll() is None and listening(chosen) and owns_port(proc.pid, chosen)

        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if ready():
            state = ProcessState(pid=proc.pid, port=chosen)
            (home / f"{name}.json").write_text(json.dumps(asdict(state)))
            return state
        proc.kill()
        if time.monotonic() > deadline:
            break  # it never came up: not a lost race
    raise ProcessError(f"{name} did not start; see {home / f'{name}.log'}")


def stop(home: Path, name: str) -> bool:
    """Stop process ``name`` (SIGTERM, then SIGKILL after 5 s); True if one was running."""
    state = status(home, name)
    (home / f"{name}.json").unlink(missing_ok=True)
    if state is None:
        return False
    os.kill(state.pid, signal.SIGTERM)
    for _ in range(50):
        if not alive(state.pid):
            break
        time.sleep(0.1)
    else:
        os.kill(state.pid, signal.SIGKILL)
    return True
