"""The package as production installs it: the wheel is built, installed into a fresh virtual
environment, and `ozi demo` runs the pipeline on the sample from it, in a folder that holds no
source tree. A file the package needs at run time but does not ship fails here.

The fresh environment takes Ozi from the wheel alone. Its dependencies come from this
environment's site-packages, added as a plain path: installing torch and the rest again would
take minutes and the network, and they are not what is under test. The path does not load
this environment's own ``.pth`` files, so the editable install of the source tree stays out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from ozi_tests.conftest import REPO, SAMPLE_DIR

pytestmark = pytest.mark.slow

SHIPPED = (
    "ozi_resources/schema.sql",
    "ozi_assets/sql/aggregates.sql",
    "ozi_assets/standing_questions.yaml",
    "ozi_assets/web/index.html",
)


def test_the_wheel_installed_without_the_source_tree_runs_the_pipeline(tmp_path):
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*build, "--wheel-dir", str(wheels), str(REPO)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("ozi-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(SHIPPED) <= names, set(SHIPPED) - names
    assert not any(name.startswith("ozi_tests/") for name in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (venv / site / "ozi-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"])

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OZI_", "PYTHON", "DAGSTER_"))
    }
    env |= {"OZI_HOME": str(work / "ozi"), "OZI_SAMPLE_DIR": str(SAMPLE_DIR)}
    where = subprocess.run(
        [str(python), "-c", "import ozi_assets, ozi_resources; print(ozi_assets.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
    ).stdout.strip()
    assert where.startswith(str(venv)), where
    ozi = str(venv / "bin" / "ozi")

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`ozi <args>` from the wheel, in the folder without the source tree."""
        return subprocess.run(
            [ozi, *args], capture_output=True, text=True, cwd=work, env=env, timeout=timeout
        )

    try:
        demo = run("demo", timeout=900)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert "Demo done" in demo.stdout
        assert "check evaluations passed" in demo.stdout
        counted = run("sql", "SELECT count(*) AS n FROM casts", "--json")
        assert counted.returncode == 0, counted.stderr
        n = int(json.loads(counted.stdout)[0]["n"])
        assert n > 0
        asked = run("ask", "How many casts were posted in total?", "--json")
        assert asked.returncode == 0, asked.stderr
        answer = json.loads(asked.stdout)
        answer = answer[0] if isinstance(answer, list) else answer
        assert next(iter(answer["rows"][0].values())) == n and answer["lineage"]
    finally:
        for command in (["serve", "stop"], ["broker", "stop"]):
            run(*command)
