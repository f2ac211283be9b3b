"""``POST /notifRequest`` (formats.md §7.13): the legacy notification operations.

:class:`LegacyNotifications` turns a parsed :class:`~.messages.NotifRequest` into
a call of the notification registry and the answer into the
``<edg_wll_NotifResult><validity>...</validity></edg_wll_NotifResult>`` document
(the granted expiry; Drop answers without a validity). Errors are
:class:`~.errors.LBError` and become the ``code``/``desc`` attributes with the
HTTP statuses of the notifRequest column of §7.16 in the query service.

* ``function``: New needs ``notifId``; Bind needs ``clientAddress`` (``EINVAL``
  without); the other operations need ``notifId``.
* ``clientAddress``: a URL (``http://``, ``https://``), or the legacy
  ``host:port``, which is stored but not delivered by lbtx;
  ``0.0.0.0:port`` and ``[::]:port`` name the caller's host in the original, and
  are stored as given.
* ``notifChangeOp``: only ``EDG_WLL_NOTIF_REPLACE`` changes the conditions.
* ``requestedValidity``: absolute time, absent or <= 0 for the server default.
* flags: ``classadd``, ``anonymized``, ``terminal_states``, ``history``,
  ``bootstrap`` are kept; the others are ignored.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, maybeDeferred

from lbtx.protocols.legacy_query import xml_out
from lbtx.protocols.legacy_query.errors import ErrorCode, LBError
from lbtx.protocols.legacy_query.messages import NotifChangeOp, NotifFunction, NotifRequest

__all__ = ["LegacyNotifications", "NOTIF_FLAG_MASK"]

NOTIF_FLAG_MASK = 1 | 32 | 64 | 128 | 256


class LegacyNotifications:
    """Answers :class:`NotifRequest` from a :class:`lbtx.server.notify.registry.Registry`."""

    def __init__(self, registry):
        self.registry = registry

    def handle(self, req: NotifRequest, caller) -> Deferred:
        """Fire with the result document text; fail with :class:`LBError`."""
        return maybeDeferred(self._call, req, caller)

    def _call(self, req: NotifRequest, caller):
        r = self.registry
        if req.notif_id is None:
            raise LBError(ErrorCode.EINVAL, "no notifId in the request")
        notif_id = str(req.notif_id)
        f = req.function
        if f == NotifFunction.NEW:
            d = r.new(caller, notif_id, destination=self._address(req, required=False),
                      conditions=req.conditions, flags=int(req.flags) & NOTIF_FLAG_MASK,
                      expires=req.validity)
        elif f == NotifFunction.BIND:
            d = r.bind(caller, notif_id, destination=self._address(req, required=True),
                       expires=req.validity)
        elif f == NotifFunction.CHANGE:
            d = r.change(caller, notif_id, conditions=req.conditions,
                         replace_conditions=req.change_op == NotifChangeOp.REPLACE)
        elif f == NotifFunction.REFRESH:
            d = r.refresh(caller, notif_id, expires=req.validity)
        elif f == NotifFunction.DROP:
            d = r.drop(caller, notif_id)
            return d.addCallback(lambda _: xml_out.notif_result(None))
        else:  # pragma: no cover - the parser knows only these
            raise LBError(ErrorCode.ENOSYS, f"unknown notification function {f!r}")
        return d.addCallback(lambda reg: xml_out.notif_result(int(reg.expires)))

    @staticmethod
    def _address(req: NotifRequest, *, required: bool) -> str | None:
        address = (req.client_address or "").strip()
        if not address:
            if required:
                raise LBError(ErrorCode.EINVAL, "Bind needs a clientAddress")
            return None
        return address
