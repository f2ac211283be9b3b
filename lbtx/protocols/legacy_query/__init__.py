"""The legacy L&B query protocol (formats.md §7): HTTP-like requests with L&B XML.

Messages (client → server, then the answer)::

    POST /queryJobs          edg_wll_QueryJobsRequest         -> edg_wll_QueryJobsResult
    POST /queryEvents        edg_wll_QueryEventsRequest       -> edg_wll_QueryEventsResult
    POST /querySequenceCode  edg_wll_QuerySequenceCodeRequest -> edg_wll_QuerySequenceCodeResult
    POST /indexedAttrs       (body ignored)                   -> edg_wll_GetIndexedAttributesResult
    POST /notifRequest       edg_wll_NotifRequest             -> edg_wll_NotifResult (ENOSYS for now)
    GET  /                   -                                -> edg_wll_UserJobs
    GET  /<unique>           -                                -> jobStat

Modules, sans I/O unless noted:

* :mod:`.http` - framing with size limits and a capped buffer;
* :mod:`.negotiation` - client kind and protocol version (§7.2);
* :mod:`.xml_tree`, :mod:`.conditions_xml`, :mod:`.xml_in` - safe XML parsing and
  the request parsers; :mod:`.messages` - the typed requests and flags;
* :mod:`.xml_out`, :mod:`.jobstat`, :mod:`.event_xml`, :mod:`.escaping` - answers;
  :mod:`.requests_out` - requests as the legacy client writes them;
  :mod:`.results_in` - reading answers (the client side);
* :mod:`.errors` - error numbers and the HTTP status table of §7.16;
* :mod:`.routing` - an HTTP request to a typed request or an immediate answer;
* :mod:`.interfaces` - :class:`IQueryBackend`, what the server provides;
* :mod:`.service` - requests to backend calls and answers (Deferreds, injected clock);
* :mod:`.protocol` - the Twisted protocol and factory.
"""

from lbtx.protocols.legacy_query.errors import ErrorCode, LBError, RequestError
from lbtx.protocols.legacy_query.interfaces import EventsAnswer, IQueryBackend, JobsAnswer
from lbtx.protocols.legacy_query.jobstat import JobView
from lbtx.protocols.legacy_query.messages import StatusFlag
from lbtx.protocols.legacy_query.protocol import LegacyQueryFactory, LegacyQueryProtocol
from lbtx.protocols.legacy_query.service import QueryService

__all__ = ["ErrorCode", "LBError", "RequestError", "IQueryBackend", "JobsAnswer",
           "EventsAnswer", "JobView", "StatusFlag", "QueryService", "LegacyQueryProtocol",
           "LegacyQueryFactory"]
