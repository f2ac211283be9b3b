"""Error numbers of the legacy query protocol and their HTTP statuses (formats.md §7.16).

Every answer that reports a problem carries an error number (a Linux ``errno`` value
or an L&B code of Appendix B) and a description, as the ``code``/``desc`` attributes
of the result document's root element. The HTTP status depends on the number *and*
on the operation: :func:`http_status` holds the table of §7.16.

:class:`LBError` is what backends fail with and what the query service turns into
an answer; :class:`RequestError`, a subclass, is the one error type the request
parsers (HTTP framing aside) raise for bad input.
"""

from __future__ import annotations

import enum

__all__ = ["ErrorCode", "LBError", "RequestError", "Operation", "http_status", "REASONS",
           "error_text"]


class ErrorCode(enum.IntEnum):
    """Error numbers that travel in ``code`` attributes."""

    OK = 0
    EPERM = 1
    ENOENT = 2
    E2BIG = 7
    EAGAIN = 11
    ENOMEM = 12
    EEXIST = 17
    EINVAL = 22
    ENOSPC = 28
    ENOSYS = 38
    EIDRM = 43
    ENOTSUP = 95
    ETIMEDOUT = 110
    XML_PARSE = 1407
    SERVER_RESPONSE = 1408
    JOBID_FORMAT = 1409
    DB_CALL = 1411
    NOJOBID = 1415
    NOINDEX = 1416
    ACCEPTED_OK = 1423


#: ``strerror`` texts (Linux) and the L&B texts of Appendix B
_TEXTS = {
    ErrorCode.OK: "Success",
    ErrorCode.EPERM: "Operation not permitted",
    ErrorCode.ENOENT: "No such file or directory",
    ErrorCode.E2BIG: "Argument list too long",
    ErrorCode.EAGAIN: "Resource temporarily unavailable",
    ErrorCode.ENOMEM: "Cannot allocate memory",
    ErrorCode.EEXIST: "File exists",
    ErrorCode.EINVAL: "Invalid argument",
    ErrorCode.ENOSPC: "No space left on device",
    ErrorCode.ENOSYS: "Function not implemented",
    ErrorCode.EIDRM: "Identifier removed",
    ErrorCode.ENOTSUP: "Operation not supported",
    ErrorCode.ETIMEDOUT: "Connection timed out",
    ErrorCode.XML_PARSE: "XML Parse error",
    ErrorCode.SERVER_RESPONSE: "Server response error",
    ErrorCode.JOBID_FORMAT: "Bad JobId format",
    ErrorCode.DB_CALL: "Database call failed",
    ErrorCode.NOJOBID: "No JobId specified in context",
    ErrorCode.NOINDEX: "No indexed condition in query",
    ErrorCode.ACCEPTED_OK: "Background operation accepted",
}


def error_text(code: int) -> str:
    """The fixed text of an error number (``strerror`` or the L&B table)."""
    try:
        return _TEXTS[ErrorCode(code)]
    except ValueError:
        return f"Unknown error {int(code)}"


def _as_code(code: int) -> int:
    try:
        return ErrorCode(code)
    except ValueError:
        return int(code)


class LBError(Exception):
    """A failure to report to the client: an error number and a description.

    :ivar code: the error number (:class:`ErrorCode` when it is a known one).
    :ivar desc: the description that goes into the ``desc`` attribute.
    """

    def __init__(self, code: int, desc: str = ""):
        self.code = _as_code(code)
        self.desc = desc
        super().__init__(f"{error_text(self.code)}: {desc}" if desc else error_text(self.code))


class RequestError(LBError, ValueError):
    """A request that cannot be accepted as sent.

    ``malformed`` requests (XML that does not parse, unknown elements or attributes,
    values of the wrong form, limits exceeded) are answered ``400 Bad Request`` by
    every operation; the others (``EINVAL`` for a query the server cannot answer, such
    as mixed attributes in one disjunction) take the operation's status for the code.
    """

    def __init__(self, code: int, desc: str = "", *, malformed: bool = True):
        super().__init__(code, desc)
        self.malformed = malformed


class Operation(str, enum.Enum):
    """The columns of the §7.16 table."""

    QUERY = "query"               # queryJobs, queryEvents
    JOB_STATUS = "job_status"     # GET /<unique>
    USER_JOBS = "user_jobs"       # GET /
    PURGE = "purge"
    DUMP = "dump"
    LOAD = "load"
    NOTIF = "notif"
    SEQCODE = "seqcode"
    STATS = "stats"
    INDEXED_ATTRS = "indexed_attrs"


E = ErrorCode
# code -> (query, job status, purge, dump, load, notif, seqcode, stats)
_TABLE = {
    E.OK: (200, 200, 200, 200, 200, 200, 200, 200),
    E.ENOENT: (404, 404, 404, 404, 404, 404, 404, 404),
    E.EPERM: (401, 401, 401, 401, 401, 401, 401, 401),
    E.EIDRM: (410, 410, 500, 500, 500, 503, 500, 500),
    E.E2BIG: (401, 500, 500, 500, 500, 503, 500, 500),
    E.EINVAL: (401, 579, 579, 500, 579, 579, 579, 579),
    E.EEXIST: (500, 500, 500, 500, 200, 200, 200, 200),
    E.ENOSYS: (500, 500, 500, 500, 500, 503, 500, 501),
    E.NOINDEX: (401, 500, 500, 401, 401, 401, 401, 401),
    E.ENOMEM: (500, 500, 500, 500, 500, 500, 500, 500),
}
_OTHER = (500, 500, 500, 500, 500, 503, 500, 500)
_COLUMN = {Operation.QUERY: 0, Operation.JOB_STATUS: 1, Operation.PURGE: 2, Operation.DUMP: 3,
           Operation.LOAD: 4, Operation.NOTIF: 5, Operation.SEQCODE: 6, Operation.STATS: 7,
           Operation.INDEXED_ATTRS: 6}
_USER_JOBS = {E.OK: 200, E.ENOENT: 404, E.EPERM: 401, E.EIDRM: 410, E.NOINDEX: 503}

#: the fixed reason phrase of every status the server sends (§7.1; 403 for the JSON API)
REASONS = {
    200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed", 410: "Gone", 415: "Unsupported Media Type",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
    579: "Invalid Data",
}


def http_status(operation: Operation, code: int) -> int:
    """The HTTP status of an API answer to ``operation`` that reports error ``code``."""
    if operation == Operation.USER_JOBS:
        return _USER_JOBS.get(_as_code(code), 500)
    return _TABLE.get(_as_code(code), _OTHER)[_COLUMN[operation]]
