"""Whether a SQL text only reads: what the database drivers' wrappers ask before it is sent.

Deny by default: a text reads when every statement in it does, and a statement reads when it

- starts with ``SELECT``, ``WITH``, ``EXPLAIN``, ``SHOW``, ``DESCRIBE``, ``VALUES``, ``TABLE``
  or works a cursor (``DECLARE``, ``FETCH``, ``MOVE``, ``CLOSE``), and names none of the words
  that write inside such a statement (``INSERT``/``UPDATE``/``DELETE``/``MERGE`` in a ``WITH``,
  ``SELECT ... INTO``, ``FOR UPDATE``/``FOR SHARE``, ``nextval()``, advisory locks...);
- or only opens, rolls back or sets up this session: ``BEGIN``, ``START TRANSACTION``,
  ``SAVEPOINT``, ``ROLLBACK``, ``SET`` (not ``SET GLOBAL``/``PERSIST``), ``USE``, ``LISTEN``...
  (``COMMIT``, ``END`` and ``RELEASE`` make a transaction's writes last: they stop a shadow);
- or is a ``PRAGMA`` that reads, or sets what lasts only for this connection (:func:`pragma_reads`).

Words are read outside comments, string literals, quoted identifiers and ``$$`` bodies; the
text is read twice, with backslashes escaping in literals (MySQL) and not (the standard), and
reads only if both readings do. What cannot be seen from the text is not: a ``SELECT``
calling a function of the app's that writes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["pragma_reads", "sql_text", "writes"]

_READ_FIRST = frozenset(
    {"SELECT", "WITH", "EXPLAIN", "SHOW", "DESCRIBE", "DESC", "VALUES", "TABLE", "DECLARE", "FETCH", "MOVE", "CLOSE"}
)
_SESSION_FIRST = frozenset(
    {
        "BEGIN",
        "START",
        "SAVEPOINT",
        "ROLLBACK",
        "ABORT",
        "SET",
        "RESET",
        "USE",
        "LISTEN",
        "UNLISTEN",
        "DISCARD",
        "DEALLOCATE",
    }
)
_LASTING_SET = frozenset({"GLOBAL", "PERSIST", "PERSIST_ONLY"})
_WRITE_WORDS = frozenset({
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "INTO", "CREATE", "DROP", "ALTER", "TRUNCATE",
    "COPY", "CALL", "LOCK", "SHARE", "GRANT", "REVOKE", "NEXTVAL", "SETVAL", "SET_CONFIG", "PG_NOTIFY",
    "PG_ADVISORY_LOCK", "PG_ADVISORY_XACT_LOCK", "PG_TRY_ADVISORY_LOCK", "PG_TRY_ADVISORY_XACT_LOCK",
    "LO_IMPORT", "LO_EXPORT", "LO_UNLINK", "LO_CREAT", "LO_CREATE", "PG_TERMINATE_BACKEND", "PG_CANCEL_BACKEND",
    "PG_RELOAD_CONF", "GET_LOCK", "RELEASE_LOCK", "LOAD_EXTENSION", "WRITEFILE", "OUTFILE", "DUMPFILE",
})  # fmt: skip

#: PRAGMAs that only read, with an argument or without.
READ_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "foreign_key_check", "integrity_check", "quick_check", "database_list", "collation_list", "compile_options",
    "function_list", "module_list", "pragma_list", "data_version", "freelist_count", "page_count",
})  # fmt: skip
#: PRAGMAs whose setting lasts only for this connection (Django and SQLAlchemy set some at connect).
LOCAL_PRAGMAS = frozenset({
    "foreign_keys", "busy_timeout", "cache_size", "cache_spill", "case_sensitive_like", "cell_size_check",
    "defer_foreign_keys", "legacy_alter_table", "mmap_size", "query_only", "read_uncommitted", "recursive_triggers",
    "reverse_unordered_selects", "synchronous", "temp_store", "threads", "trusted_schema", "automatic_index",
    "analysis_limit", "count_changes", "full_column_names", "short_column_names", "locking_mode",
    "wal_autocheckpoint", "shrink_memory",
})  # fmt: skip
#: PRAGMAs that write even without a value.
_WORKING_PRAGMAS = frozenset({"optimize", "incremental_vacuum", "wal_checkpoint"})


def pragma_reads(name: str, valued: bool) -> bool:
    """Whether ``PRAGMA name`` (``= value`` or ``(value)`` when ``valued``) changes nothing that lasts."""
    name = name.rpartition(".")[2].lower()
    if name in READ_PRAGMAS or name in LOCAL_PRAGMAS:
        return True
    return not valued and name not in _WORKING_PRAGMAS


def sql_text(sql: Any, context: Any = None) -> str | None:
    """The text of a statement as a driver takes it (``str``, ``bytes``, psycopg's ``sql.SQL``);
    None when it is something we cannot read."""
    if isinstance(sql, str):
        return sql
    if isinstance(sql, (bytes, bytearray, memoryview)):
        return bytes(sql).decode("utf-8", "replace")
    as_string = getattr(sql, "as_string", None)
    if callable(as_string):
        for argument in (context, None):
            try:
                text = as_string(argument)
            except Exception:  # noqa: S112 - try the next way; None below means "unreadable"
                continue
            if isinstance(text, str):
                return text
    return None


def _statements(text: str, escapes: bool) -> list[list[str]]:
    """Each statement's tokens: words (upper case), ``=``, ``(`` and ``.``; a backslash escapes
    the next character in a literal when ``escapes`` (MySQL), not otherwise (the standard)."""
    statements: list[list[str]] = [[]]
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif c == "/" and text.startswith("/*", i):
            i = text.find("*/", i + 2)
            i = n if i < 0 else i + 2
        elif c in "'\"`":
            i += 1  # a doubled quote ('') reads as two literals in a row: the same words
            while i < n and text[i] != c:
                i += 2 if escapes and text[i] == "\\" else 1
            i += 1
        elif c == "$" and (end := text.find("$", i + 1)) > 0 and _is_tag(text[i + 1 : end]):
            close = text.find(text[i : end + 1], end + 1)
            i = n if close < 0 else close + end + 1 - i
        elif c.isalpha() or c == "_":
            start = i
            while i < n and (text[i].isalnum() or text[i] in "_$"):
                i += 1
            statements[-1].append(text[start:i].upper())
        elif c == ";":
            statements.append([])
            i += 1
        else:
            if c in "=(.":
                statements[-1].append(c)
            i += 1
    return [s for s in statements if s]


def _is_tag(tag: str) -> bool:
    return tag == "" or (not tag[0].isdigit() and all(ch.isalnum() or ch == "_" for ch in tag))


def _reads(tokens: list[str]) -> bool:
    first = tokens[0]
    if first in _READ_FIRST:
        return _WRITE_WORDS.isdisjoint(tokens)
    if first in _SESSION_FIRST:
        return not (first == "SET" and len(tokens) > 1 and tokens[1] in _LASTING_SET)
    if first == "PRAGMA" and len(tokens) > 1:
        name = tokens[3] if len(tokens) > 3 and tokens[2] == "." else tokens[1]
        return pragma_reads(name, "=" in tokens or "(" in tokens)
    return False


def writes(sql: Any, context: Any = None) -> str | None:
    """None when ``sql`` only reads; else the text to name in the reason (cut to 80 characters)."""
    text = sql_text(sql, context)
    if text is None:
        return f"a statement we cannot read ({type(sql).__name__})"
    if all(_reads(tokens) for escapes in (False, True) for tokens in _statements(text, escapes)):
        return None
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."
