"""DATABASE_URL: the usual URL forms for PostgreSQL and SQLite, and a SQLite file in VAR_DIR when
it is unset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal.settings import BASE_DIR, database_from_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_postgres_url_gives_psycopg_with_health_checked_persistent_connections(
    scheme, tmp_path, monkeypatch
):
    monkeypatch.setenv("DB_CONN_MAX_AGE", "30")
    database = database_from_url(
        f"{scheme}://portal:p%40ss%3Aword@db.example.com:6543/portal_prod?sslmode=require",
        var_dir=tmp_path,
    )
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["USER"], database["PASSWORD"]) == ("portal", "p@ss:word")
    assert (database["HOST"], int(database["PORT"])) == ("db.example.com", 6543)
    assert database["NAME"] == "portal_prod"
    assert database["OPTIONS"] == {"sslmode": "require"}
    assert database["CONN_MAX_AGE"] == 30
    assert database["CONN_HEALTH_CHECKS"] is True
    assert "TEST" not in database  # Django's test_<name> on the same server


def test_connections_are_kept_for_a_minute_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("DB_CONN_MAX_AGE", raising=False)
    assert database_from_url("postgres://db/portal", var_dir=tmp_path)["CONN_MAX_AGE"] == 60


def test_a_relative_sqlite_path_is_in_the_project_directory(tmp_path):
    database = database_from_url("sqlite:///var/dev.sqlite3", var_dir=tmp_path)
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == BASE_DIR / "var" / "dev.sqlite3"


def test_an_absolute_sqlite_path_is_kept(tmp_path):
    database = database_from_url(f"sqlite:///{tmp_path}/portal.sqlite3", var_dir=tmp_path)
    assert str(tmp_path).startswith("/")  # so the URL above has four slashes
    assert database["NAME"] == tmp_path / "portal.sqlite3"


def test_sqlite_writers_queue_and_readers_go_on(tmp_path):
    options = database_from_url("sqlite:////srv/portal.sqlite3", var_dir=tmp_path)["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] >= 5
    assert "journal_mode=WAL" in options["init_command"]


def test_options_in_a_sqlite_url_win_over_the_defaults(tmp_path):
    options = database_from_url("sqlite:////srv/portal.sqlite3?timeout=3", var_dir=tmp_path)[
        "OPTIONS"
    ]
    assert options["timeout"] == 3
    assert options["transaction_mode"] == "IMMEDIATE"


def test_sqlite_tests_use_a_file_in_var_dir_that_other_processes_can_open(tmp_path):
    database = database_from_url("sqlite:////srv/portal.sqlite3", var_dir=tmp_path)
    assert database["TEST"]["NAME"] == tmp_path / "test-portal.sqlite3"


def test_an_unknown_scheme_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mysqlx"):
        database_from_url("mysqlx://db/portal", var_dir=tmp_path)


def test_without_database_url_the_database_is_a_sqlite_file_in_var_dir_in_wal_mode(tmp_path):
    script = (
        "import django, json; django.setup();"
        "from django.db import connection;"
        "mode = connection.cursor().execute('PRAGMA journal_mode').fetchone()[0];"
        "print(json.dumps([connection.vendor, str(connection.settings_dict['NAME']), mode]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"DJANGO_SETTINGS_MODULE": "portal.settings", "VAR_DIR": str(tmp_path / "var")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    vendor, name, journal_mode = json.loads(result.stdout.strip().splitlines()[-1])
    assert vendor == "sqlite"
    assert name == str(tmp_path / "var" / "portal.sqlite3")
    assert journal_mode == "wal"
    assert (tmp_path / "var").is_dir()  # SQLite makes its file, not the folder
