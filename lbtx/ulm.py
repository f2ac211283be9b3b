"""The ULM event text format (formats.md §2): one event per line of ``KEY=VALUE`` fields.

:func:`parse` turns a line into an :class:`~lbtx.events.Event`; :func:`format` turns
an event into a line. Every problem with the input raises :class:`ULMError` (a
:class:`~lbtx.errors.LBFormatError`) naming the key and offset concerned, and no
other exception escapes :func:`parse`.

Upstream quirks that lbtx does not reproduce: a known key given twice is always an
error; records over 100 fields or 100 separator bytes are rejected rather than
overflowing; an unknown enumeration name is reported as a bad value (upstream maps
it to UNDEFINED and then reports the record incomplete).
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any, Callable

from lbtx.errors import LBFormatError, ULMError
from lbtx.events import EVENT_CLASSES, Event, null_value
from lbtx.jobid import _PARSED as _PARSED_IDS, JobId, NotifId
from lbtx.schema import ENUMS, EVENT_SPECS, HEADER, AttrSpec, event_spec
from lbtx.timeval import NULL_TIME, Timeval

__all__ = ["parse", "parse_bytes", "parse_fields", "format", "format_bytes", "escape_text",
           "unescape_text", "ULMError", "DEFAULT_MAX_LENGTH", "MAX_FIELDS", "MAX_SEPARATORS"]

#: Longest record accepted by default (the server and loggers take their own limit).
DEFAULT_MAX_LENGTH = 16 * 1024 * 1024
#: Upstream's fixed table sizes; longer records are rejected.
MAX_FIELDS = 100
MAX_SEPARATORS = 100

_NAME = r"[A-Za-z0-9._-]+"
_VALUE = r'"[^"\\]*(?:\\.[^"\\]*)*"|[^ \t\n"\\=]*'
_FIELD = rf"(?:{_NAME})=(?:{_VALUE})"
_FIELDS_RE = re.compile(rf"([ \t]*)({_NAME})=({_VALUE})", re.S)
_first = operator.itemgetter(0)
# The same fields for parse's fast path: blanks, key, the opening quote (closing
# quotes are not captured), the quoted text or the bare one; possessive, as the
# parts never need to give back.
_FAST_FIELDS_RE = re.compile(
    r'([ \t]*+)([A-Za-z0-9._-]++)=(?:(")([^"\\]*+(?:\\.[^"\\]*+)*+)"|([^ \t\n"\\=]*+))', re.S)
_third = operator.itemgetter(2)
_UNESCAPE_RE = re.compile(r"\\(.)", re.S)
_INT_RE = re.compile(r"[+-]?[0-9]{1,19}\Z")
# what C strtod reads as a decimal number (Python's float() also takes "1_0", Unicode digits, blanks)
_DOUBLE_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
#: Longest text accepted for a double.
_MAX_DOUBLE_TEXT = 64


def _unescape_char(m: re.Match) -> str:
    c = m.group(1)
    return "\n" if c == "n" else c


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    # Fast path for the usual escapes (\\, \", \n); NUL cannot occur (lines with NUL
    # are refused), so it serves as a placeholder for an escaped backslash.
    fast = text.replace("\\\\", "\0").replace('\\"', '"').replace("\\n", "\n")
    if "\\" in fast:
        return _UNESCAPE_RE.sub(_unescape_char, text)
    return fast.replace("\0", "\\")


def _escape(text: str) -> str:
    if "\\" in text or '"' in text or "\n" in text:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return text


def escape_text(text: str) -> str:
    """A text as it is written inside a ULM value's double quotes (formats.md §2.2)."""
    return _escape(text)


def unescape_text(text: str) -> str:
    """The inverse of :func:`escape_text`."""
    return _unescape(text)


# --- value converters: text (non-empty, unescaped) -> Python value -------------

def _to_int(text: str) -> int:
    if not _INT_RE.match(text):
        raise ValueError("not a decimal integer")
    v = int(text)
    if not -2**63 <= v < 2**63:
        raise ValueError("integer out of range")
    return v


def _to_port(text: str) -> int:
    v = _to_int(text)
    if not 0 <= v <= 65535:
        raise ValueError("port out of range 0..65535")
    return v


def _to_double(text: str) -> float:
    if len(text) > _MAX_DOUBLE_TEXT:
        raise ValueError("number too long")
    if not _DOUBLE_RE.match(text):
        raise ValueError("not a decimal number")
    v = float(text)
    if not math.isfinite(v):
        raise ValueError("not a finite number")
    return v


def _to_taglist(text: str) -> tuple | None:
    pairs = []
    for item in text.split(","):
        name, eq, value = item.partition("=")
        if eq and name and value:
            pairs.append((name, value))
    return tuple(pairs) or None


def _to_bool(text: str) -> int:
    v = _to_int(text)
    if v not in (0, 1):
        raise ValueError("not 0 or 1")
    return v


def _enum_converter(enum_name: str) -> Callable[[str], Any]:
    cls = ENUMS[enum_name]
    exact = {m.name: m for m in cls}
    exact.update({m.text: m for m in cls if m.text not in exact})
    folded = cls._lookup

    def convert(text: str):
        member = exact.get(text) or folded.get(text.casefold())
        if member is None:
            raise ValueError(f"not a {enum_name} name")
        return member
    convert.exact = exact  # for parse's fast path
    return convert


def _converter(spec: AttrSpec) -> Callable[[str], Any]:
    if spec.enum is not None and spec.flags is None:
        return _enum_converter(spec.enum)
    return {
        "string": str,
        "int": _to_int,
        "port": _to_port,
        "bool": _to_bool,
        "double": _to_double,
        "float": _to_double,
        "timeval": Timeval.from_ulm,
        "jobid": JobId.parse,
        "notifid": NotifId.parse,
        "taglist": _to_taglist,
    }[spec.type]


# --- value formatters: Python value -> text ---------------------------------

def _fmt_double(v: float) -> str:
    text = "%f" % v
    if len(text) <= _MAX_DOUBLE_TEXT and float(text) == v:
        return text
    return repr(float(v))  # shortest exact form, e.g. 1e+300 or 1e-07


def _formatter(spec: AttrSpec) -> Callable[[Any], str]:
    if spec.enum is not None and spec.flags is None:
        if spec.type == "logsrc":
            return lambda v: v.text
        return lambda v: v.name
    return {
        "string": lambda v: "" if v is None else _escape(v),
        "int": str,
        "port": str,
        "bool": lambda v: str(int(v)),
        "double": _fmt_double,
        "float": _fmt_double,
        "timeval": lambda v: "" if v is None else v.to_ulm(),
        # ids may hold '"' or '\\' (their parts are opaque), so they are escaped like strings
        "jobid": lambda v: "" if v is None else _escape(str(v)),
        "notifid": lambda v: "" if v is None else _escape(str(v)),
        # upstream writes tag lists unescaped (formats.md §2.4 quirk) although readers unescape
        # every quoted value; lbtx escapes them so that what it writes reads back the same
        "taglist": lambda v: "" if not v else _escape(",".join(f"{n}={x}" for n, x in v)),
    }[spec.type]


# --- per-key tables, built once ---------------------------------------------

# key -> (slot, converter, spec) for the common header
_HEADER_KEYS = {a.ulm_key: (a.py_name, _converter(a), a) for a in HEADER}
# event type -> key -> (slot, converter, spec)
_EVENT_KEYS = {
    s.name: {a.ulm_key: (a.py_name, _converter(a), a) for a in s.attrs} for s in EVENT_SPECS
}
# every event-specific key -> the type it belongs to (for KEY_MISUSE)
_ALL_EVENT_KEYS = {a.ulm_key: s.name for s in EVENT_SPECS for a in s.attrs}
_EVENT_KEY_SET = frozenset(_ALL_EVENT_KEYS)
# keys that may not repeat
_KNOWN_KEYS = frozenset(_HEADER_KEYS) | frozenset(_ALL_EVENT_KEYS) | {"DG.EVNT"}
# header strings that may legitimately be empty
_EMPTY_OK = frozenset({"HOST", "DG.SEQCODE"})
# types whose values may exceed 512 characters (ids have their own limit, MAX_JOBID_LENGTH)
_LONG_TYPES = frozenset({"string", "taglist", "jobid", "notifid"})
_FORMATTERS = {
    s.name: tuple((a.ulm_key, a.py_name, _formatter(a)) for a in s.attrs) for s in EVENT_SPECS
}
_HEADER_FMT = {a.py_name: _formatter(a) for a in HEADER}


def _key_entry(a: AttrSpec) -> tuple:
    """(slot, converter or None for texts, whether the value may exceed 512 chars)."""
    convert = None if a.type == "string" else _converter(a)
    return (a.py_name, convert, a.type in _LONG_TYPES)


# event type -> KEY -> entry, for the header and the type's own attributes
_KEYMAP = {
    s.name: {**{a.ulm_key: _key_entry(a) for a in HEADER},
             **{a.ulm_key: _key_entry(a) for a in s.attrs}}
    for s in EVENT_SPECS
}


def _make_reset(cls) -> Callable[[Event], None]:
    """A function that puts every slot of a fresh ``cls`` instance to its default
    (generated once per class: much faster than a loop of setattr)."""
    names = list(cls._defaults)
    args = ", ".join(f"_{i}=defaults[{n!r}]" for i, n in enumerate(names))
    body = "\n".join(f"    ev.{n} = _{i}" for i, n in enumerate(names)) or "    pass"
    ns: dict = {}
    exec(f"def reset(ev, {args}):\n{body}\n", {"defaults": dict(cls._defaults)}, ns)
    return ns["reset"]


_RESET = {name: _make_reset(cls) for name, cls in EVENT_CLASSES.items()}


def _fail(reason: str, code: str = "BROKEN_ULM", key: str | None = None,
          position: int | None = None) -> ULMError:
    return ULMError(reason, code=code, key=key, position=position)


def _syntax_error(line: str) -> ULMError:
    """Find where ``line`` stops being valid ULM and say why."""
    pos = 0
    n = len(line)
    first = True
    while True:
        start = pos
        while pos < n and line[pos] in " \t":
            pos += 1
        if pos >= n or line[pos] == "\n":
            if first:
                return _fail("empty record: no KEY=VALUE field", position=pos)
            return _fail("text after the end of the record", position=pos)
        if not first and pos == start:
            return _fail("fields must be separated by blanks", position=pos)
        m = re.compile(_NAME).match(line, pos)
        if m is None:
            if line[pos] == "=":
                return _fail("'=' without a key name before it", position=pos)
            return _fail(f"bad character {line[pos]!r} in a key name", position=pos)
        pos = m.end()
        if pos >= n or line[pos] != "=":
            return _fail(f"key {m.group()[:60]!r} is not followed by '='", key=m.group()[:60],
                         position=pos)
        pos += 1
        key = m.group()[:60]
        if pos < n and line[pos] == '"':
            q = pos
            pos += 1
            while pos < n and line[pos] != '"':
                pos += 2 if line[pos] == "\\" else 1
            if pos >= n:
                return _fail("unterminated quoted value", key=key, position=q)
            pos += 1
            if pos < n and line[pos] not in " \t\n":
                return _fail("a closing quote must be followed by a blank or the end", key=key,
                             position=pos)
        else:
            while pos < n and line[pos] not in ' \t\n"\\=':
                pos += 1
            if pos < n and line[pos] in '"\\=':
                what = {'"': "a stray quote", "\\": "a backslash outside quotes",
                        "=": "a second '='"}[line[pos]]
                return _fail(f"{what} in an unquoted value", key=key, position=pos)
        if pos < n and line[pos] == "\n":
            if line[pos + 1:].strip(" \t\n"):
                return _fail("text after the end of the record", position=pos + 1)
        first = False


def parse(line: str, *, max_length: int = DEFAULT_MAX_LENGTH, require_user: bool = False,
          require_job_id: bool = True) -> Event:
    """Parse one ULM record into an event.

    ``require_user``: DG.USER must be present (the server's view; producers talking
    to a logger omit it). ``require_job_id=False`` accepts template records without
    DG.JOBID, as the sample streams of the original test suite are.

    Raises :class:`ULMError` for anything that is not a complete, valid record.
    """
    if type(line) is str and len(line) <= max_length and "\0" not in line:
        ev = _parse_fast(line, require_user, require_job_id)
        if ev is not None:
            return ev
    return _parse_reference(line, max_length, require_user, require_job_id)


def _parse_fast(line: str, require_user: bool, require_job_id: bool) -> Event | None:
    """The event of an ordinary valid record, or None for anything else (errors,
    notifications, duplicate keys, DG.ARRIVED ...), which :func:`_parse_reference`
    then handles. Whenever it returns an event, it is the one _parse_reference gives."""
    fields = _FAST_FIELDS_RE.findall(line)
    if not fields or len(fields) > MAX_FIELDS:
        return None
    # as in _parse_reference: the fields must tile the line up to its trailing blanks
    # and LF (each has an '=' and, if quoted, a closing quote that are not captured)
    end = len(line) - 1 if line[-1:] == "\n" else len(line)
    stop = end
    while stop > 0 and line[stop - 1] in " \t":
        stop -= 1
    blanks = list(map(_first, fields))
    if len("".join(map("".join, fields))) + len(fields) + len("".join(map(_third, fields))) \
            != stop or "" in blanks[1:]:
        return None
    if len("".join(blanks)) - len(blanks[0]) + end - stop > MAX_SEPARATORS:
        return None
    raw = {name.upper(): quoted or bare for _, name, _, quoted, bare in fields}
    if len(raw) != len(fields) or "DG.TYPE" in raw or "DG.ARRIVED" in raw:
        return None
    if "\\" in line:  # only quoted values can hold a backslash
        for key, value in raw.items():
            if "\\" in value:
                raw[key] = _unescape(value)
    evnt = raw.get("DG.EVNT")
    if not evnt:
        return None
    spec = event_spec(evnt)
    if spec is None:
        return None
    found = _BUILDERS.get(spec.name)
    if found is None:
        return None
    build, keys = found
    extra = raw.keys() - keys
    if extra and not _EVENT_KEY_SET.isdisjoint(extra):
        return None  # KEY_MISUSE
    try:
        return build(raw.get, require_user, require_job_id)
    except Exception:  # the reference parser says what is wrong
        return None


def _inline(convert, i: int, ns: dict) -> str:
    """An expression converting ``t`` as ``convert`` (``C{i}`` in ``ns``) does, with
    the usual cases done inline: a known enumeration name, a parsed job id, a short
    unsigned decimal; anything else is left to ``convert``."""
    exact = getattr(convert, "exact", None)
    if exact is not None:
        ns[f"X{i}"] = exact
        return f"(X{i}.get(t) or C{i}(t))"
    if convert == JobId.parse:  # (a new bound method at every access)
        ns["PARSED_IDS"] = _PARSED_IDS
        return f"(PARSED_IDS.get(t) or C{i}(t))"
    if convert is _to_int:
        return f"(int(t) if len(t) < 19 and t.isdigit() and t.isascii() else C{i}(t))"
    return f"C{i}(t)"


def _make_builder(type_name: str):
    """``build(get, require_user, require_job_id)`` for ``type_name``: every slot
    set once from the unquoted, unescaped texts (``get`` is the record's dict.get),
    None if a value is too long or unset while required; conversion errors raise."""
    cls = EVENT_CLASSES[type_name]
    ns: dict[str, Any] = {"cls": cls, "new": object.__new__}
    lines = ["def build(get, require_user, require_job_id):", "    ev = new(cls)"]
    keymap = _KEYMAP[type_name]
    by_slot = {slot: key for key, (slot, _, _) in keymap.items()}
    required = {slot: null for _, slot, null in _REQUIRED_HEADER + _REQUIRED_ATTRS[type_name]}
    for i, (slot, default) in enumerate(cls._defaults.items()):
        key = by_slot[slot]
        _, convert, long_ok = keymap[key]
        ns[f"D{i}"], ns[f"C{i}"] = default, convert
        lines.append(f"    t = get({key!r})")
        if convert is None:
            lines.append(f"    ev.{slot} = D{i} if t is None else t")
        else:
            if not long_ok:
                lines.append("    if t is not None and len(t) > 512:")
                lines.append("        return None")
            lines.append(f"    ev.{slot} = {_inline(convert, i, ns)} if t else D{i}")
        if slot in required:
            ns[f"N{i}"] = required[slot]
            cond = {"user": "require_user and ", "job_id": "require_job_id and "}.get(slot, "")
            test = "is None" if required[slot] is None else f"== N{i}"
            lines.append(f"    if {cond}ev.{slot} {test}:")
            lines.append("        return None")
    lines.append("    return ev")
    exec("\n".join(lines) + "\n", ns)
    return ns["build"], frozenset(keymap)


def parse_fields(line: str, *, max_length: int = DEFAULT_MAX_LENGTH,
                 unique: frozenset[str] = frozenset()) -> dict[str, str]:
    """The fields of one ULM record, keys upper-cased, values unquoted and unescaped,
    whatever kind of record it is (an event, a notification, a logger command).

    Raises :class:`ULMError` for a line that is not ULM: too long, NUL, a syntax
    error, a known key (or one of ``unique``) twice, too many fields or separators.
    """
    if not isinstance(line, str):
        raise _fail(f"a ULM record is text, not {type(line).__name__}")
    if len(line) > max_length:
        raise _fail(f"record of {len(line)} characters exceeds the limit of {max_length}",
                    code="TOO_LONG")
    if "\0" in line:
        raise _fail("NUL character in the record", position=line.index("\0"))
    fields = _FIELDS_RE.findall(line)
    if not fields:
        raise _syntax_error(line)
    if len(fields) > MAX_FIELDS:
        raise _fail(f"record has {len(fields)} fields, more than {MAX_FIELDS}", code="TOO_LONG")
    # The fields must tile the line up to its trailing blanks and line feed: findall
    # skips what does not match, so any gap shows as a shortfall in coverage.
    end = len(line) - 1 if line[-1:] == "\n" else len(line)
    stop = end
    while stop > 0 and line[stop - 1] in " \t":
        stop -= 1
    blanks = list(map(_first, fields))
    if len("".join(map("".join, fields))) + len(fields) != stop or "" in blanks[1:]:
        raise _syntax_error(line)  # a gap, or fields not separated by blanks
    raw: dict[str, str] = {}
    for _ws, name, value in fields:
        key = name.upper()
        if key in raw and (key in _KNOWN_KEYS or key in unique):
            raise _fail(f"key {key} given twice", code="KEY_DUPLICITY", key=key)
        if value[:1] == '"':
            value = value[1:-1]
            if "\\" in value:
                value = _unescape(value)
        raw[key] = value
    # every blank outside quotes counts (leading ones do not), the ones before the LF too
    separators = len("".join(blanks)) - len(blanks[0])
    if separators + end - stop > MAX_SEPARATORS:
        raise _fail(f"record has more than {MAX_SEPARATORS} separator blanks", code="TOO_LONG")
    return raw


def _parse_reference(line: str, max_length: int, require_user: bool,
                     require_job_id: bool) -> Event:
    """:func:`parse` step by step: the definition of what it accepts, and every error."""
    raw = parse_fields(line, max_length=max_length)
    rtype = raw.get("DG.TYPE")
    if rtype is not None and rtype.lower() == "notification":
        type_name, incomplete_ok = "Notification", True
    elif rtype is not None and rtype.lower() == "command":
        raise _fail("a command record is not an event", code="EVENT_UNDEF", key="DG.TYPE")
    else:
        evnt = raw.get("DG.EVNT")
        if not evnt:
            raise _fail("the record has no DG.EVNT", code="EVENT_UNDEF", key="DG.EVNT")
        spec = event_spec(evnt)
        if spec is None:
            raise _fail(f"unknown event type {evnt[:60]!r}", code="EVENT_UNDEF", key="DG.EVNT")
        type_name, incomplete_ok = spec.name, False

    cls = EVENT_CLASSES[type_name]
    ev = cls.__new__(cls)
    _RESET[type_name](ev)
    keymap = _KEYMAP[type_name]
    for key, text in raw.items():
        entry = keymap.get(key)
        if entry is None:
            other = _ALL_EVENT_KEYS.get(key)
            if other is not None:
                raise _fail(f"key {key} belongs to event type {other}, not {type_name}",
                            code="KEY_MISUSE", key=key)
            continue  # unknown keys (PROG, DG.LLLID, DG.ARRIVED, ...) are ignored
        slot, convert, long_ok = entry
        if convert is None:
            # a text: as upstream, an empty value is the empty string (a value,
            # distinct from unset); an empty number, code, id or date is unset
            setattr(ev, slot, text)
            continue
        if not text:
            continue
        if len(text) > 512 and not long_ok:
            raise _fail(f"value of {key} is {len(text)} characters long", code="TOO_LONG", key=key)
        try:
            setattr(ev, slot, convert(text))
        except LBFormatError as e:
            raise _fail(f"bad value for {key}: {e.reason}", code=e.code, key=key) from None
        except (ValueError, OverflowError) as e:
            raise _fail(f"bad value for {key}: {e} ({text[:60]!r})", code="BAD_VALUE",
                        key=key) from None

    if ev.arrived == NULL_TIME and raw.get("DG.ARRIVED"):
        try:
            ev.arrived = Timeval.from_ulm(raw["DG.ARRIVED"])
        except LBFormatError as e:
            raise _fail(f"bad value for DG.ARRIVED: {e.reason}", code="BAD_VALUE",
                        key="DG.ARRIVED") from None

    if not incomplete_ok:
        _check_complete(ev, require_user, require_job_id)
    return ev


# (ulm_key, slot, unset value) of the required header fields (LVL is not checked, as upstream)
# and of the required attributes of each type; the unset value of a date is NULL_TIME, not 0
_REQUIRED_HEADER = tuple((a.ulm_key, a.py_name, null_value(a)) for a in HEADER
                         if a.required and a.py_name != "level")
_REQUIRED_ATTRS = {s.name: tuple((a.ulm_key, a.py_name, null_value(a)) for a in s.attrs
                                 if a.required) for s in EVENT_SPECS}


def _required(fields) -> tuple:
    """(getter of all the slots at once, their unset values, the specs) for a check."""
    fields = tuple(fields)
    slots = [slot for _, slot, _ in fields]
    getter = operator.attrgetter(*slots) if len(slots) > 1 else (
        (lambda ev, g=operator.attrgetter(slots[0]): (g(ev),)) if slots else (lambda ev: ()))
    return getter, tuple(null for _, _, null in fields), fields


_HEADER_CHECKS = {
    (user, job): _required(f for f in _REQUIRED_HEADER
                           if (user or f[1] != "user") and (job or f[1] != "job_id"))
    for user in (False, True) for job in (False, True)
}
_ATTR_CHECKS = {name: _required(fields) for name, fields in _REQUIRED_ATTRS.items()}


def _check_complete(ev: Event, require_user: bool, require_job_id: bool) -> None:
    """Every required field must hold a value other than its sentinel; an absent key
    leaves the sentinel, so this also finds missing keys."""
    for (getter, nulls, fields), what in ((_HEADER_CHECKS[require_user, require_job_id], ""),
                                          (_ATTR_CHECKS[ev.type_name], "the required attribute ")):
        if any(map(operator.eq, getter(ev), nulls)):
            for key, slot, null in fields:
                if getattr(ev, slot) == null:
                    raise _fail(f"{ev.type_name} record lacks {what}{key}", code="MSG_INCOMPLETE",
                                key=key)


#: event type -> (its builder, the keys it reads), for _parse_fast
_BUILDERS = {name: _make_builder(name) for name in EVENT_CLASSES if name != "Notification"}


def parse_bytes(data: bytes, **kw) -> Event:
    """Parse a record given as bytes (UTF-8; undecodable bytes kept by surrogateescape)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail(f"expected bytes, not {type(data).__name__}")
    data = bytes(data)
    max_length = kw.get("max_length", DEFAULT_MAX_LENGTH)
    if len(data) > max_length:  # the limit is on bytes here; do not decode what is refused
        raise _fail(f"record of {len(data)} bytes exceeds the limit of {max_length}", code="TOO_LONG")
    return parse(data.decode("utf-8", "surrogateescape"), **kw)


def format(ev: Event, *, newline: bool = True) -> str:
    """Write ``ev`` as one ULM record in the upstream field order.

    Unlike upstream, which writes every attribute and unset texts as ``""``, unset
    texts and ids (``None``) are left out, so that an empty string and an unset
    value survive the round trip; upstream readers take both forms.
    """
    h = _HEADER_FMT
    parts = ["DATE=" + h["timestamp"](ev.timestamp)]
    if ev.arrived is not None and ev.arrived != NULL_TIME:
        parts.append("ARR_DATE=" + h["arrived"](ev.arrived))
    if ev.host is not None:  # unset only in an incomplete notification record
        parts.append('HOST="' + h["host"](ev.host) + '"')
    parts.append("PROG=edg-wms")
    parts.append("LVL=" + ev.level.name)
    parts.append("DG.PRIORITY=" + str(ev.priority))
    parts.append('DG.SOURCE="' + ev.source.text + '"')
    if ev.src_instance is not None:
        parts.append('DG.SRC_INSTANCE="' + h["src_instance"](ev.src_instance) + '"')
    if ev.type_name == "Notification":
        # the notification header (formats.md §9.8): DG.TYPE instead of DG.EVNT; the
        # job's fields only when set
        parts.append('DG.TYPE="notification"')
        if ev.job_id is not None:
            parts.append('DG.JOBID="' + h["job_id"](ev.job_id) + '"')
        if ev.seqcode is not None:
            parts.append('DG.SEQCODE="' + h["seqcode"](ev.seqcode) + '"')
    else:
        parts.append('DG.EVNT="' + ev.type_name + '"')
        parts.append('DG.JOBID="' + h["job_id"](ev.job_id) + '"')
        parts.append('DG.SEQCODE="' + h["seqcode"](ev.seqcode) + '"')
    if ev.user is not None:
        parts.append('DG.USER="' + h["user"](ev.user) + '"')
    for key, slot, fmt in _FORMATTERS[ev.type_name]:
        value = getattr(ev, slot)
        if value is not None:  # unset texts and ids are left out, so "" stays distinct
            parts.append(key + '="' + fmt(value) + '"')
    text = " ".join(parts)
    return text + "\n" if newline else text


def format_bytes(ev: Event, *, newline: bool = True) -> bytes:
    return format(ev, newline=newline).encode("utf-8", "surrogateescape")




