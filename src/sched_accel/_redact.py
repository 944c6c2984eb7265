"""What is secret in a line we show, and how it is shown: ``***`` in its place.

Secret are a URL's user and password (``https://***@host/``); the value of a query (or
fragment) parameter whose name looks secret (:func:`is_secret_name`: ``api_key``,
``X-Api-Key``, ``access_token``, ``client_secret``, ``password``, ``sig``, ``auth`` ...);
the value of a header whose name does (``Authorization``, ``Proxy-Authorization``,
``Cookie``, ``Set-Cookie``, ``X-Api-Key`` ...); and in free text, besides URLs, the
credential after ``Bearer`` and the value after such a name (``api_key=...``,
``'Authorization': '...'``, ``Cookie: ...`` to the end of the line). Names are matched
case-insensitively; everything else is shown as it is, so a line still says what happened.

:func:`sched_accel._log.event` passes the message and every field value through
:func:`redact_text`, and so do the ``sched-accel`` command's printing helpers. Redacting a
typical line costs 1-15 microseconds (``tests/test_redact.py`` holds it under 100).

Not found: a secret in a URL's path (``/bot<token>/``), one with neither a name nor
``Bearer`` before it (``token abc``), a URL percent-encoded inside another, and a password
with an unescaped ``/``, ``?`` or ``#`` after digits (``user:12/34@host`` reads as a port).
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Iterable, Mapping

__all__ = ["MASK", "is_secret_name", "redact_headers", "redact_text", "redact_url"]

#: What stands where a secret was.
MASK = "***"

#: Words that are secret when they are a whole word of a name (``x-api-key``, ``sig``) ...
_WORDS = "key|sig|pass|pwd|otp|jwt|sid|session|bearer"
#: ... anywhere in it (``accesstoken``, ``client_secret``, ``oauth``; ``auth`` but not ``author``) ...
_PARTS = r"password|passwd|passphrase|secret|token|apikey|signature|credential|cookie|auth(?!or(?!i[sz]))"
#: ... or at its end (``subscriptionkey``, ``hmacsig``).
_SECRET_NAME = re.compile(rf"(?:^|[^a-z0-9])(?:{_WORDS})(?:$|[^a-z0-9])|{_PARTS}|(?:key|sig)$")
#: A part of every secret name: what free text is searched for before a name is judged.
_TRIGGERS = f"{_WORDS}|secret|token|credential|cookie|auth"
#: Last words of a name that says where a secret is, not the secret (``password_env``, ``token_url``).
_WHERE = frozenset({"env", "envs", "file", "path", "url", "uri", "name", "names", "type", "header", "ttl", "length"})
#: Headers whose whole value is a credential (a cookie's value has spaces, ``;`` and ``=``).
_WHOLE_VALUE = ("proxy-authorization", "authorization", "set-cookie", "cookie")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")


@functools.lru_cache(maxsize=512)
def is_secret_name(name: str) -> bool:
    """Whether a parameter or header called ``name`` holds a secret (case-insensitive)."""
    words = _CAMEL.sub("_", name).lower()
    if _SECRET_NAME.search(words) is None:
        return False
    last = _WORD.findall(words)
    return not last or last[-1] not in _WHERE


def _params(text: str) -> str:
    """``a=1&api_key=***``: each ``name=value`` whose name looks secret masked."""
    if "=" not in text:
        return text
    pieces = re.split(r"([&;])", text)
    for i in range(0, len(pieces), 2):
        name, eq, _ = pieces[i].partition("=")
        if eq and is_secret_name(urllib.parse.unquote_plus(name)):
            pieces[i] = f"{name}={MASK}"
        elif "://" in pieces[i]:  # ``next=https://user:pw@host/``
            pieces[i] = f"{name}{eq}{redact_url(pieces[i][len(name) + len(eq) :])}"
    return "".join(pieces)


def _authority(rest: str) -> tuple[str, str]:
    """(the authority as shown, what follows it) of ``rest``, what stands after ``scheme://``."""
    end = next((i for i, ch in enumerate(rest) if ch in "/?#"), len(rest))
    authority = rest[:end]
    if "@" in authority:
        user, _, host = authority.rpartition("@")
        if user.rpartition(":")[2] == "password":  # a placeholder, as in ``redis://[:password@]host``
            return authority, rest[end:]
        return f"{MASK}@{host}", rest[end:]
    after_host = authority.partition("]")[2] if authority.startswith("[") else authority  # an IPv6 literal
    port = after_host.partition(":")[2]
    if ":" not in after_host or port.isdigit() or not port or port == "port":  # ``redis://host:port``
        return authority, rest[end:]
    # ``user:pa/ss@host``, or a URL cut short inside its password (``repr(url)[:40]``): no port after ``:``.
    at = rest.rfind("@")
    if at < 0:
        return MASK, ""
    tail = rest[at + 1 :]
    end = next((i for i, ch in enumerate(tail) if ch in "/?#"), len(tail))
    return f"{MASK}@{tail[:end]}", tail[end:]


def redact_url(url: str) -> str:
    """``url`` as it may be shown: its user and password (``***@``) and the values of its
    secret-looking query and fragment parameters (``api_key=***``) masked."""
    scheme, sep, rest = url.partition("://")
    if sep and _SCHEME.fullmatch(scheme):
        authority, rest = _authority(rest)
        prefix = f"{scheme}{sep}{authority}"
    else:
        prefix, rest = "", url
    rest, hash_, fragment = rest.partition("#")
    path, mark, query = rest.partition("?")
    return f"{prefix}{path}{mark}{_params(query)}{hash_}{_params(fragment)}"


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]) -> list[tuple[str, str]]:
    """Headers as ``(name, value)`` pairs that may be shown: a secret-looking header's value
    masked, the URLs in the others (``Referer``, ``Location``) redacted."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    shown = []
    for name, value in pairs:
        name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        shown.append((name, MASK if is_secret_name(name) else redact_text(value)))
    return shown


_QUOTED_VALUE = r"\"[^\"\r\n]*\"?|'[^'\r\n]*'?"
#: ``name=``, ``name: ``, ``"name": `` and a pair's ``('name', '`` before a value (``b'``: bytes).
_SEP = r"""["']?[ \t]*[:=][ \t]*(?:b(?=["']))?|["'][ \t]*,[ \t]*b?(?=["'])"""
_URL = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s<>\"'`]+")
_BEARER = re.compile(r"(?<![\w-])(bearer[ \t]+)[\w.~+/-]+=*", re.IGNORECASE)
_HEADER = re.compile(
    rf"(?<![\w.-])((?:{'|'.join(_WHOLE_VALUE)})(?:{_SEP}))({_QUOTED_VALUE}|[^\r\n\"']+)", re.IGNORECASE
)
_TRIGGER = re.compile(_TRIGGERS)
#: After a name: the separator and the value (quoted, else up to a space or a delimiter).
_AFTER_NAME = re.compile(rf"(?P<sep>{_SEP})(?P<value>{_QUOTED_VALUE}|[^\s&;,\"'<>)\]}}]+)")
_NAME_TAIL = re.compile(r"[\w-]*")


def _masked(value: str) -> str:
    """A value replaced by ``***``, its quotes kept."""
    if value[:1] in "\"'":
        return value[0] + MASK + (value[0] if len(value) > 1 and value[-1] == value[0] else "")
    return MASK


def _pairs(text: str, lower: str) -> str:
    """``text`` with the value after each secret-looking name masked. Only the names around
    a trigger word (``key``, ``token``...) are read: a line has few of them, if any."""
    shown: list[str] = []
    done = 0
    for hit in _TRIGGER.finditer(lower):
        start = hit.start()
        if start < done:
            continue  # inside a name or a value already masked (``auth_token``)
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_-"):
            start -= 1
        tail = _NAME_TAIL.match(text, hit.end())
        after = _AFTER_NAME.match(text, tail.end()) if tail is not None else None
        if tail is None or after is None or (start > 0 and text[start - 1] == "."):  # ``a.password_env``: a key's path
            continue
        name, sep = text[start : tail.end()], after["sep"]
        # ``name: value`` is a secret's only when the name is quoted or a header's (``X-Api-Key: ...``):
        # ``jobs:refresh_tokens: on`` is a target and its state, ``its password: set ...`` a sentence.
        if (":" in sep and sep[0] not in "\"'" and "-" not in name) or not is_secret_name(name):
            continue
        shown += [text[done : tail.end()], sep, _masked(after["value"])]
        done = after.end()
    return "".join(shown) + text[done:] if shown else text


def redact_text(text: str) -> str:
    """``text`` with the secrets in it masked: URLs redacted (:func:`redact_url`), a
    ``Bearer`` credential, and the value after a secret-looking name (``api_key=...``,
    ``"password": "..."``, ``Authorization: ...`` to the end of its line).

    Each kind is looked for only when the text holds what it needs (``://``, ``bearer``, a
    trigger word next to ``=`` or ``:``): a line without any costs a few lookups."""
    if "://" in text:
        text = _URL.sub(lambda match: redact_url(match[0]), text)
    lower = text.lower()
    if "bearer" in lower or "auth" in lower or "cookie" in lower:
        text = _BEARER.sub(lambda match: match[1] + MASK, text)
        text = _HEADER.sub(lambda match: match[1] + _masked(match[2]), text)
        lower = text.lower()
    if ("=" in text or ":" in text or "," in text) and _TRIGGER.search(lower):
        if len(lower) != len(text):  # a few characters lower-case to two: keep the offsets
            lower = "".join(ch.lower()[0] for ch in text)
        text = _pairs(text, lower)
    return text
