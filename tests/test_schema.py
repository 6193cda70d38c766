"""One schema: a new database, a migrated reference-tool database and a database migrated from
every earlier monitor version end with the same tables, columns, types, constraints, indexes,
triggers and views (read with sqlite-utils' introspection, compared in full, not by name)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from conftest import T0
from legacy import make_monitor_db, make_reference_db

from monitor import open_db
from monitor.store.migrations import LATEST, schema_sql, statements


def describe(path: Path) -> dict:
    """Everything that makes up a database's schema, in a form that compares exactly."""
    db = sqlite_utils.Database(sqlite3.connect(path), execute_plugins=False)
    described: dict = {"user_version": db.execute("PRAGMA user_version").fetchone()[0],
                       "journal_mode": db.execute("PRAGMA journal_mode").fetchone()[0]}
    for name in db.table_names():
        if name.startswith("sqlite_"):
            continue  # SQLite's own: sqlite_stat1 holds the planner's statistics, data, not schema
        table = db[name]
        described[f"table {name}"] = {
            "sql": " ".join(table.schema.split()),
            "columns": [tuple(c) for c in table.columns],
            "pks": table.pks,
            "foreign_keys": sorted(repr(fk) for fk in table.foreign_keys),
            "indexes": sorted((i.name, tuple(i.columns), i.unique) for i in table.indexes
                              if not i.name.startswith("sqlite_autoindex")),
            "unique": sorted(tuple(i.columns) for i in table.indexes if i.unique),
        }
    for name, table, sql in db.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"
                                       " AND sql IS NOT NULL"):
        described[f"index {name}"] = (table, " ".join(sql.split()))
    for trigger in db.triggers:
        described[f"trigger {trigger.name}"] = (trigger.table, " ".join(trigger.sql.split()))
    for name in db.view_names():
        described[f"view {name}"] = " ".join(db[name].schema.split())
    db.close()
    return described


@pytest.fixture
def new_schema(tmp_path):
    open_db(tmp_path / "new.db").close()
    return describe(tmp_path / "new.db")


def test_a_new_database_has_every_object_of_schema_sql(new_schema):
    names = {re.match(r"CREATE (?:VIRTUAL )?(?:TABLE|INDEX|TRIGGER|VIEW) IF NOT EXISTS (\w+)", s).group(1)
             for s in statements(schema_sql())}
    made = {key.split()[1] for key in new_schema if " " in key}
    assert names <= made
    assert new_schema["user_version"] == LATEST
    assert new_schema["journal_mode"] == "wal"


@pytest.mark.parametrize("origin", ["reference", "v1", "v2", "v3"])  # the versions that shipped
def test_a_migrated_database_has_exactly_the_new_schema(tmp_path, new_schema, origin):
    path = tmp_path / f"{origin}.db"
    if origin == "reference":
        make_reference_db(path, T0)
    else:
        make_monitor_db(path, int(origin[1:]), T0)
    open_db(path).close()
    migrated = describe(path)
    assert migrated.keys() == new_schema.keys()
    for key, value in new_schema.items():
        assert migrated[key] == value, key


def test_the_packaged_schema_is_the_top_level_file():
    top = Path(__file__).parent.parent / "schema.sql"
    assert schema_sql() == top.read_text(encoding="utf-8")
