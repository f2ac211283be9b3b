"""Wire protocols: sans-I/O codecs plus thin Twisted adapters.

``box/`` is lbtx's own framed request/acknowledge protocol (docs/protocol.md);
``legacy_framing/`` holds the upstream interlogger→server and DGLOG frames;
:mod:`lbtx.protocols.sniff` tells them apart by a connection's first bytes.
"""
