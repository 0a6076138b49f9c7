"""The lake under concurrent writers: two processes commit small transactions to one SQLite
catalog at the same time (what `ozi backfill` beside the daemon does); every commit lands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ozi_assets.definitions import build_resources
from ozi_tests.conftest import REPO, make_settings

pytestmark = pytest.mark.slow

WRITER = """
import sys
from ozi_assets.definitions import build_resources
from ozi_resources.settings import OziSettings
from ozi_resources.warehouse import Commit

name, count = sys.argv[1], int(sys.argv[2])
warehouse = build_resources(OziSettings.from_env())["warehouse"]
for i in range(count):
    warehouse.write(
        Commit(name, ("clean/users",)),
        lambda conn: conn.execute(
            "INSERT INTO links VALUES ($h, 1, 'follow', 2, now(), now(), $i)",
            {"h": f"0x{name}{i:04d}", "i": i},
        ),
    )
print("done", flush=True)
"""


def test_two_processes_committing_at_once_lose_nothing(tmp_path):
    settings = make_settings(tmp_path / "ozi")
    warehouse = build_resources(settings)["warehouse"]
    with warehouse.writer():
        pass  # create the lake first: then both writers only commit rows
    env = dict(os.environ, OZI_HOME=str(settings.home))
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, "40"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("aa", "bb")
    ]
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err[-2000:]
        assert out.strip() == "done"
    with warehouse.reader() as conn:
        rows = conn.execute("SELECT count(*), count(DISTINCT hash) FROM links").fetchone()
        commits = len(warehouse.snapshots(conn))
    assert rows == (80, 80)
    assert commits >= 81  # one snapshot per transaction, plus the schema's


def test_a_port_is_owned_only_by_the_process_listening_on_it():
    """`ozi serve` and the broker are started on a preferred port; when another OZI_HOME takes
    it between the check and the bind, the one that lost must not be taken for the one
    listening (the freshness bench once measured a vector shard that was not its own)."""
    import os
    import socket

    from ozi_resources.processes import owns_port

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert owns_port(os.getpid(), port)
        child = subprocess.Popen(["sleep", "30"])
        try:
            assert not owns_port(child.pid, port)
        finally:
            child.kill()
            child.wait()
