"""The web view of the query port (formats.md §10, cli.md §4).

Browsers and scripts (curl, wget) reach the same port as the legacy API; a request
is for the web view when its ``Accept:`` line does not name the L&B API
(:mod:`lbtx.protocols.legacy_query.negotiation`). Pages:

* :mod:`.paths` reads the request target into a page to show;
* :mod:`.html_query` parses the ``/?query=`` condition syntax of §8.6;
* :mod:`.job_rows` lists the rows of a job detail page;
* :mod:`.render` writes HTML and ``?text`` plain-text pages, :mod:`.rss` RSS feeds;
* :mod:`.service` answers a request from the query backend, with the caller's
  read rights, and :mod:`.port` routes the query port's requests to it.
"""
