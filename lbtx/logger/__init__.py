"""The local logger's half of local delivery: the durable spool (docs/spool.md).

:mod:`lbtx.logger.spool` appends events to one file per job with group commit;
:mod:`lbtx.logger.layout` holds the names and line format the interlogger reads
back; :mod:`lbtx.logger.durable` the fsync helpers and the disk worker thread.
"""
