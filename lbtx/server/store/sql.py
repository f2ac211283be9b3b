"""SQL statements as values, and the two dialects the stores speak.

The store logic (:mod:`~lbtx.server.store.batch`, :mod:`~lbtx.server.store.reads`,
:mod:`~lbtx.server.store.schema`) is written once, as generators that yield
:class:`Sql` statements and receive their result rows; each backend drives them
over its own connection (SQLite synchronously in a worker thread, PostgreSQL
asynchronously through txpostgres). A :class:`Dialect` hides the differences:
placeholders, "column in this list", column types and multi-row inserts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Generator, Iterable, Sequence

__all__ = ["Sql", "Dialect", "SQLITE", "POSTGRES", "Work", "run_sync"]

#: rows per multi-row INSERT statement (PostgreSQL)
INSERT_CHUNK = 500


@dataclass(frozen=True)
class Sql:
    """One statement: its text, its parameters (a sequence of rows when ``many``),
    and whether it returns rows the generator wants back."""

    text: str
    params: Sequence[Any] = ()
    many: bool = False
    returns: bool = False


#: a unit of store work: yields statements, receives each one's rows (or None),
#: returns its result
Work = Generator[Sql, Any, Any]


class Dialect:
    """The SQL differences between the backends."""

    name = "generic"
    placeholder = "?"
    text_c = "TEXT"          #: text compared byte by byte (job ids)
    boolean = "INTEGER"
    blob = "BLOB"
    #: what locks the selected rows until the end of the transaction ("" where the
    #: single writer needs no row locks)
    for_update = ""

    def in_list(self, column: str) -> str:
        """A condition "``column`` is one of the values of one list parameter"."""
        raise NotImplementedError

    def list_param(self, values: Iterable[Any]) -> Any:
        raise NotImplementedError

    def select(self, text: str, params: Sequence[Any] = ()) -> Sql:
        return Sql(self._fix(text), tuple(params), returns=True)

    def execute(self, text: str, params: Sequence[Any] = ()) -> Sql:
        return Sql(self._fix(text), tuple(params))

    def _fix(self, text: str) -> str:
        return text.replace("?", self.placeholder) if self.placeholder != "?" else text

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple],
               suffix: str = "") -> list[Sql]:
        """Statements inserting ``rows`` (none when there are no rows)."""
        raise NotImplementedError

    def schema_exists(self) -> Sql:
        """A query returning one row when the ``schema_version`` table exists."""
        raise NotImplementedError

    def ddl(self, text: str) -> str:
        """DDL text with the dialect's column types in place of ``{TEXT_C}``,
        ``{BOOL}`` and ``{BLOB}``."""
        return (text.replace("{TEXT_C}", self.text_c).replace("{BOOL}", self.boolean)
                .replace("{BLOB}", self.blob))


class _SQLite(Dialect):
    name = "sqlite"

    def in_list(self, column: str) -> str:
        return f"{column} IN (SELECT value FROM json_each(?))"

    def list_param(self, values: Iterable[Any]) -> Any:
        return json.dumps([v if isinstance(v, (int, float)) or v is None else str(v)
                           for v in values])

    def insert(self, table, columns, rows, suffix=""):
        if not rows:
            return []
        marks = ", ".join("?" * len(columns))
        return [Sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) {suffix}",
                    rows, many=True)]

    def schema_exists(self):
        return Sql("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
                   returns=True)


class _Postgres(Dialect):
    name = "postgres"
    placeholder = "%s"
    text_c = 'TEXT COLLATE "C"'
    boolean = "BOOLEAN"
    blob = "BYTEA"
    for_update = " FOR UPDATE"

    def in_list(self, column: str) -> str:
        return f"{column} = ANY(?)"

    def list_param(self, values: Iterable[Any]) -> Any:
        return [v if isinstance(v, (int, float)) or v is None else str(v) for v in values]

    def _fix(self, text: str) -> str:
        # literal % must be doubled for psycopg2 once parameters are passed
        return text.replace("%", "%%").replace("?", "%s")

    def insert(self, table, columns, rows, suffix=""):
        out = []
        row_marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        for i in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[i:i + INSERT_CHUNK]
            params = [v for row in chunk for v in row]
            out.append(Sql(head + ", ".join([row_marks] * len(chunk)) + " " + suffix, params))
        return out

    def schema_exists(self):
        return Sql("SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
                   "AND tablename = 'schema_version'", returns=True)


SQLITE: Dialect = _SQLite()
POSTGRES: Dialect = _Postgres()


def run_sync(cursor, work: Work) -> Any:
    """Drive ``work`` over a DB-API cursor (qmark or format style as the dialect
    chose); return its result."""
    rows = None
    while True:
        try:
            stmt = work.send(rows)
        except StopIteration as stop:
            return stop.value
        if stmt.many:
            cursor.executemany(stmt.text, stmt.params)
        else:
            cursor.execute(stmt.text, stmt.params)
        rows = cursor.fetchall() if stmt.returns else None
