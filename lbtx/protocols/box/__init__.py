"""The box protocol: lbtx's framed request/acknowledge protocol (docs/protocol.md).

:mod:`~.codec` frames key/value boxes, :mod:`~.messages` gives them meaning,
:mod:`~.session` is the sans-I/O server side, :mod:`~.protocol` the Twisted
adapters (the server protocol of a store or logger port, and :class:`BoxClient`).
"""
