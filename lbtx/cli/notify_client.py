"""A small blocking client of the notification endpoints of the JSON API.

``glite-lb-notify`` and ``lbtx watch`` talk to ``/api/notifications`` on the
server's query port (docs/notifications.md) over TCP, TLS or a Unix socket, one
request per connection, each bounded by a timeout (a long poll by its wait plus
the timeout). Failures raise :class:`~lbtx.cli.client_error.ClientError`: the
error number and message of the API's error document, ``ETIMEDOUT`` or the
socket's errno, ``EDG_WLL_ERROR_SERVER_RESPONSE`` for an answer that is not the
API's JSON.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import quote

from lbtx.cli.client_error import ClientError, from_os_error
from lbtx.cli.connection import connect
from lbtx.cli.environment import Address
from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.query.conditions_json import query_to_json

__all__ = ["NotifyClient", "MAX_ANSWER"]

MAX_ANSWER = 64 * 1024 * 1024  # bytes of one answer
_HEADERS = {"User-Agent": "lbtx-notify/1", "Accept": "application/json"}


class _Connection(http.client.HTTPConnection):
    """``http.client`` over :func:`lbtx.cli.connection.connect` (Unix, TCP or TLS)."""

    def __init__(self, address: Address, timeout: float):
        super().__init__(address.host or "localhost", address.port or None, timeout=timeout)
        self._address = address

    def connect(self):
        sock = connect(self._address, time.monotonic() + self.timeout)
        sock.settimeout(self.timeout)
        self.sock = sock


class NotifyClient:
    """Notification operations against one server (``address``)."""

    def __init__(self, address: Address, *, timeout: float = 120.0):
        self.address = address
        self.timeout = timeout

    # --- transport ------------------------------------------------------------------
    def _connection(self, timeout: float):
        return _Connection(self.address, timeout)

    def call(self, method: str, path: str, doc: Any = None, *, extra_time: float = 0.0) -> dict:
        """One request; the answer document (``ClientError`` for any failure)."""
        conn = self._connection(self.timeout + extra_time)
        body = None if doc is None else json.dumps(doc).encode("utf-8")
        headers = dict(_HEADERS)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(MAX_ANSWER + 1)
            status = response.status
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, OSError):
                raise from_os_error(e, f"talking to {self.address}") from None
            raise ClientError(ErrorCode.SERVER_RESPONSE, f"{self.address}: {e}") from None
        finally:
            conn.close()
        if len(data) > MAX_ANSWER:
            raise ClientError(ErrorCode.SERVER_RESPONSE, "the answer is too big")
        try:
            answer = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ClientError(ErrorCode.SERVER_RESPONSE,
                              f"HTTP {status} without a JSON answer") from None
        if not isinstance(answer, dict):
            raise ClientError(ErrorCode.SERVER_RESPONSE, "the answer is not a JSON object")
        if status != 200 or "error" in answer:
            code = answer.get("error")
            if not isinstance(code, int) or isinstance(code, bool):
                code = ErrorCode.SERVER_RESPONSE
            raise ClientError(code, str(answer.get("message", ""))[:500])
        return answer

    @staticmethod
    def _path(notif_id: str, action: str = "") -> str:
        path = "/api/notifications/" + quote(str(notif_id), safe="")
        return path + ("/" + action if action else "")

    # --- operations -------------------------------------------------------------------
    def new(self, *, notif_id: str | None = None, destination: str | None = None,
            conditions=(), flags: list[str] = (), validity: int | None = None) -> dict:
        """Register; the registration document (``id``, ``expires``...)."""
        doc: dict[str, Any] = {"destination": destination,
                               "conditions": query_to_json(conditions), "flags": list(flags)}
        if notif_id is not None:
            doc["id"] = notif_id
        if validity is not None:
            doc["validity"] = int(validity)
        return self.call("POST", "/api/notifications", doc)["notification"]

    def bind(self, notif_id: str, *, destination: str | None,
             validity: int | None = None) -> dict:
        doc: dict[str, Any] = {"destination": destination}
        if validity is not None:
            doc["validity"] = int(validity)
        return self.call("POST", self._path(notif_id, "bind"), doc)["notification"]

    def change(self, notif_id: str, conditions) -> dict:
        return self.call("POST", self._path(notif_id, "change"),
                         {"conditions": query_to_json(conditions)})["notification"]

    def refresh(self, notif_id: str, *, validity: int | None = None) -> dict:
        doc = {} if validity is None else {"validity": int(validity)}
        return self.call("POST", self._path(notif_id, "refresh"), doc)["notification"]

    def drop(self, notif_id: str) -> None:
        self.call("POST", self._path(notif_id, "drop"), {})

    def get(self, notif_id: str) -> dict:
        return self.call("GET", self._path(notif_id))["notification"]

    def messages(self, notif_id: str, *, after: int, wait: float) -> list[dict]:
        """Acknowledge up to ``after``; the next messages (waiting up to ``wait`` s)."""
        wait_s = max(0, int(wait))
        answer = self.call("GET", self._path(notif_id, "messages") + f"?after={int(after)}"
                           f"&wait={wait_s}", extra_time=wait_s)
        messages = answer.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ClientError(ErrorCode.SERVER_RESPONSE, "messages is not a list of objects")
        return messages

    def job(self, job_id: str) -> dict:
        """``GET /api/jobs/<jobid>``: the job's status document."""
        return self.call("GET", "/api/jobs/" + quote(str(job_id), safe=""))["job"]["status"]
