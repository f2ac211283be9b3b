"""The query port's request router with the web view: HTML requests (those whose
``Accept:`` line does not name the L&B API, §7.2) go to :class:`WebPages`; the
rest as :class:`~lbtx.server.query_port.QueryPortHandler` routes them."""

from __future__ import annotations

from lbtx.protocols.legacy_query.negotiation import ClientKind, negotiate
from lbtx.server.api import is_api_request
from lbtx.server.query_port import QueryPortHandler

__all__ = ["SiteHandler"]


class SiteHandler(QueryPortHandler):
    def __init__(self, legacy, api, web):
        super().__init__(legacy, api)
        self.web = web

    def handle(self, request, caller):
        if not is_api_request(request) and negotiate(request.headers).kind == ClientKind.HTML:
            return self.web.handle(request, caller)
        return super().handle(request, caller)
