"""Real servers for the production-path tests: PostgreSQL (Debian's package, which the
Makefile installs) and an S3 API server (moto in server mode), each on a free loopback port in
a temporary folder, stopped when the test module ends."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ozi_resources.processes import free_port, listening


@dataclass(frozen=True)
class Postgres:
    port: int
    user: str

    def libpq(self, db: str) -> str:
        """A libpq connection string (DuckLake's postgres catalog takes this form)."""
        return f"dbname={db} host=127.0.0.1 port={self.port} user={self.user}"

    def url(self, db: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"


def postgres_bindir() -> Path:
    """The folder of Debian's initdb / postgres / pg_ctl. Raises FileNotFoundError when the
    server package is not installed (`make test` installs it)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise FileNotFoundError("PostgreSQL server binaries not found: apt-get install postgresql")


@contextmanager
def postgres_server(databases: tuple[str, ...]) -> Iterator[Postgres]:
    """initdb + postgres on a free port with ``databases`` created, trust auth on loopback,
    in a temporary folder removed afterwards.

    As root the server runs as the ``postgres`` system user (PostgreSQL refuses to run as
    root), which Debian's package creates; its folder is then made outside pytest's private
    temporary tree, which that user cannot enter.
    """
    bindir = postgres_bindir()
    folder = Path(tempfile.mkdtemp(prefix="ozi-pg-"))
    data = folder / "pgdata"
    data.mkdir(parents=True)
    as_user: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:
        user = "postgres"
        entry = pwd.getpwnam(user)
        for path in (folder, data):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", user, "--"]
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", user],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            *as_user,
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={folder}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start on port {port}")
            time.sleep(0.2)
        import psycopg2

        for _ in range(50):  # accepting TCP is not yet accepting logins
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="postgres")
                break
            except psycopg2.OperationalError:
                time.sleep(0.2)
        conn.autocommit = True
        with conn.cursor() as cursor:
            for db in databases:
                cursor.execute(f'CREATE DATABASE "{db}"')
        conn.close()
        yield Postgres(port, user)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str = "ozi-test"
    secret_access_key: str = "ozi-test-secret"
    region: str = "us-east-1"


@contextmanager
def s3_server(buckets: tuple[str, ...]) -> Iterator[S3Server]:
    """moto's S3 API server on a free loopback port with ``buckets`` created."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    s3 = S3Server(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(s3.endpoint_url, timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        from dagster_aws.s3 import S3Resource

        client = S3Resource(
            endpoint_url=s3.endpoint_url,
            region_name=s3.region,
            aws_access_key_id=s3.access_key_id,
            aws_secret_access_key=s3.secret_access_key,
        ).get_client()
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield s3
    finally:
        server.terminate()
        server.wait(timeout=30)
