"""Grid job identifiers and notification identifiers (formats.md §1).

A job id is ``https://<host>[:<port>]/<unique>[?<info>]``. The host and port name
the bookkeeping server that owns the job (queries on ``port``, event intake on
``port + 1``); ``unique`` is the job's key. Subjob ids are derived from the parent
id, a seed and the subjob index so that every party computes the same ids.
"""

from __future__ import annotations

import base64
import hashlib
import os

from lbtx.errors import JobIdError

PREFIX = "https://"
DEFAULT_PORT = 9000
NOTIF_PREFIX = "NOTIF:"
#: Seed used for subjob ids when the registration names none (upstream constant).
DEFAULT_SUBJOB_SEED = "edg_wll_GenerateSubjobIds()"
#: Longest job id text accepted (far above any real one; guards hostile input).
MAX_JOBID_LENGTH = 4096

_WHITESPACE = frozenset(" \t\r\n\v\f")
#: Cache of parsed job ids by text, cleared when full.
_PARSED: dict[str, "JobId"] = {}
_PARSED_MAX = 65536


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest, altchars=b"-_").rstrip(b"=").decode("ascii")


def new_unique() -> str:
    """Return a fresh 22-character unique part from 128 random bits."""
    return _b64(os.urandom(16))


class JobId:
    """A parsed job id. Equal ids compare and hash equal; ``str()`` gives the canonical text."""

    __slots__ = ("host", "port", "unique", "info", "_text", "_hash")

    def __init__(self, host: str, port: int, unique: str, info: str | None = None):
        self.host = host
        self.port = port or DEFAULT_PORT
        self.unique = unique
        self.info = info
        text = f"{PREFIX}{host}:{self.port}/{unique}"
        self._text = text + "?" + info if info is not None else text
        self._hash = hash(self._text)

    @classmethod
    def parse(cls, text: str) -> "JobId":
        """Parse ``text``; raise :class:`JobIdError` saying why it is not a job id.

        Parsed ids are cached (a job's events all name it); treat them as immutable.
        """
        if cls is JobId and type(text) is str:
            hit = _PARSED.get(text)
            if hit is not None:
                return hit
            jid = cls._parse(text)
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[text] = jid
            return jid
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> "JobId":
        if not isinstance(text, str):
            raise JobIdError(f"job id must be text, not {type(text).__name__}")
        if len(text) > MAX_JOBID_LENGTH:
            raise JobIdError(f"job id longer than {MAX_JOBID_LENGTH} characters")
        if not text.startswith(PREFIX):
            raise JobIdError(f"job id {text[:80]!r} does not start with {PREFIX!r}")
        rest = text[len(PREFIX):]
        server, slash, path = rest.partition("/")
        if not slash:
            raise JobIdError(f"job id {text[:80]!r} has no '/' after the server")
        unique, q, info = path.partition("?")
        if not server:
            raise JobIdError(f"job id {text[:80]!r} has an empty server part")
        if not unique:
            raise JobIdError(f"job id {text[:80]!r} has an empty unique part")
        if _WHITESPACE.intersection(server) or _WHITESPACE.intersection(unique) or "\0" in text:
            raise JobIdError(f"job id {text[:80]!r} contains whitespace or NUL")
        host, port = server, DEFAULT_PORT
        colon = server.rfind(":")
        if colon >= 0 and "]" not in server[colon:]:
            host, port_text = server[:colon], server[colon + 1:]
            if not port_text.isdigit() or not port_text.isascii() or not 0 <= int(port_text) <= 65535:
                raise JobIdError(f"job id {text[:80]!r} has a bad port {port_text[:20]!r}")
            port = int(port_text)
        if not host:
            raise JobIdError(f"job id {text[:80]!r} has an empty host")
        return cls(host, port, unique, info if q else None)

    @classmethod
    def generate(cls, server: str) -> "JobId":
        """A new job id for the server ``host[:port]`` (an IPv6 literal in brackets)."""
        if not isinstance(server, str) or "/" in server or "?" in server:
            raise JobIdError(f"bad server address {server!r:.80}: expected host[:port]")
        # the server part follows the rules of parse(), so the new id always parses back
        jid = JobId.parse(f"{PREFIX}{server}/{new_unique()}")
        return cls(jid.host, jid.port, jid.unique)

    def subjob(self, seed: str | None, index: int) -> "JobId":
        """The id of subjob ``index`` (0-based) of this job registered with ``seed``."""
        if index < 0:
            raise JobIdError("subjob index must not be negative")
        seed = seed or DEFAULT_SUBJOB_SEED
        # surrogateescape: ids and seeds read from undecodable bytes hash as those bytes
        data = f"{self.unique},{seed},{index}".encode("utf-8", "surrogateescape")
        digest = hashlib.md5(data).digest()
        return JobId(self.host, self.port, _b64(digest))

    def subjobs(self, seed: str | None, count: int) -> list["JobId"]:
        return [self.subjob(seed, i) for i in range(count)]

    @property
    def server(self) -> str:
        """``host:port`` of the owning server's query port."""
        return f"{self.host}:{self.port}"

    @property
    def store_address(self) -> tuple[str, int]:
        """Where events for this job are delivered: the query port plus one."""
        return self.host, self.port + 1

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"JobId({self._text!r})"

    def __eq__(self, other) -> bool:
        return self is other or (isinstance(other, JobId) and self._text == other._text)

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: "JobId") -> bool:
        return self._text < other._text


class NotifId(JobId):
    """A notification id: job-id syntax with the unique part prefixed by ``NOTIF:``."""

    __slots__ = ()

    @classmethod
    def parse(cls, text: str) -> "NotifId":
        jid = JobId.parse(text)
        if not jid.unique.startswith(NOTIF_PREFIX) or len(jid.unique) == len(NOTIF_PREFIX):
            raise JobIdError(f"notification id {text[:80]!r} lacks the {NOTIF_PREFIX!r} prefix")
        return cls(jid.host, jid.port, jid.unique, jid.info)

    @classmethod
    def generate(cls, server: str) -> "NotifId":
        jid = JobId.generate(server)
        return cls(jid.host, jid.port, NOTIF_PREFIX + jid.unique)

    @property
    def notif_unique(self) -> str:
        """The key of the registration: the text after ``NOTIF:``."""
        return self.unique[len(NOTIF_PREFIX):]
