"""Upstream reply and error codes (formats.md §5.12, §6.7, Appendix B) and how lbtx's
per-event results map onto them.

The store port answers a legacy interlogger with ``(major, minor, message)``
(:func:`il_reply_for`); the local logger answers a DGLOG producer with one integer
(:func:`dglog_answer_for`). Legacy senders act on the codes only (§5.6): ``LB_OK``
and ``LB_DBERR``/``ENOENT`` commit; ``LB_DBERR`` with another minor and
``LB_NOMEM`` retry; everything else is final.
"""

from __future__ import annotations

import errno

from lbtx.protocols.box.messages import ErrorCode, Result, ResultCode

__all__ = ["LB_OK", "LB_NOMEM", "LB_PROTO", "LB_AUTH", "LB_PERM", "LB_DBERR", "LB_SYS",
           "LB_TIME", "EDG_WLL_IL_SYS", "EDG_WLL_IL_EVENTS_WAITING", "LB_ERROR_CODES",
           "lb_error_code", "il_reply_for", "il_reply_for_error",
           "dglog_answer_for", "dglog_answer_for_error"]

# Major reply codes of the store frame.
LB_OK = 0
LB_NOMEM = 200
LB_PROTO = 400
LB_AUTH = 500
LB_PERM = 600
LB_DBERR = 700
LB_SYS = 800
LB_TIME = 900

# L&B error codes (Appendix B) used here.
EDG_WLL_ERROR_PARSE_BROKEN_ULM = 1401
EDG_WLL_ERROR_DB_CALL = 1411
EDG_WLL_IL_PROTO = 1417
EDG_WLL_IL_SYS = 1418
EDG_WLL_IL_EVENTS_WAITING = 1419

#: LBFormatError codes (lbtx.errors) -> L&B error codes; anything else is "broken ULM".
LB_ERROR_CODES = {
    "BROKEN_ULM": EDG_WLL_ERROR_PARSE_BROKEN_ULM,
    "EVENT_UNDEF": 1402,
    "MSG_INCOMPLETE": 1403,
    "KEY_DUPLICITY": 1404,
    "KEY_MISUSE": 1405,
    "BAD_JOBID": 1409,
    "IL_SYS": EDG_WLL_IL_SYS,
}


def lb_error_code(detail: str) -> int:
    """The L&B error code for an invalid event's detail (an LBFormatError code)."""
    return LB_ERROR_CODES.get(detail, EDG_WLL_ERROR_PARSE_BROKEN_ULM)


def il_reply_for(result: Result) -> tuple[int, int, str]:
    """The store-frame reply ``(major, minor, message)`` for one event's result (§6.7)."""
    code = result.code
    if code.accepted:
        return LB_OK, 0, "OK"
    message = result.reason or code.value.replace("_", " ")
    if code is ResultCode.UNKNOWN_JOB:
        return LB_DBERR, errno.ENOENT, result.reason or "job not registered"
    if code is ResultCode.EXISTS:
        return LB_DBERR, errno.EEXIST, message
    if code is ResultCode.NOT_OWNER:
        return LB_PERM, 0, message
    return LB_PROTO, lb_error_code(result.detail), message


def il_reply_for_error(code: ErrorCode, message: str) -> tuple[int, int, str]:
    """The store-frame reply for a request that failed as a whole.

    Retryable failures (the handler failed or timed out) are ``LB_DBERR`` with a
    minor other than ENOENT, which legacy interloggers keep and retry.
    """
    if code is ErrorCode.TIMEOUT:
        return LB_DBERR, errno.ETIMEDOUT, message
    if code.retryable:
        return LB_DBERR, EDG_WLL_ERROR_DB_CALL, message
    return LB_PROTO, 0, message


def dglog_answer_for(result: Result) -> int:
    """The DGLOG answer for one event's result: 0, an errno or an L&B error code."""
    code = result.code
    if code.accepted:
        return 0
    if code is ResultCode.UNKNOWN_JOB:
        return errno.ENOENT
    if code is ResultCode.EXISTS:
        return errno.EEXIST
    if code is ResultCode.NOT_OWNER:
        return errno.EPERM
    return lb_error_code(result.detail)


def dglog_answer_for_error(code: ErrorCode, errno_value: int | None = None) -> int:
    """The DGLOG answer for a failed request: the failure's errno when it has one
    (a full disk is ``ENOSPC``), else ``EAGAIN`` for a retryable failure (as upstream
    answers timeouts) and ``EINVAL`` otherwise."""
    if errno_value:
        return errno_value
    return errno.EAGAIN if code.retryable else errno.EINVAL
