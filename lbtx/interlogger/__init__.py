"""The interlogger: delivers the spool's events to the servers that own their jobs.

:mod:`~lbtx.interlogger.interfaces` the transport a queue uses (connector,
channel, replies); :mod:`~lbtx.interlogger.queue` one delivery queue per
destination, an Automat machine with deadlines and back-off;
:mod:`~lbtx.interlogger.positions` the durable "delivered up to here" of each
spool file; :mod:`~lbtx.interlogger.reader` reading spool files back;
:mod:`~lbtx.interlogger.delivery` the glue: spool files in, queues fed, positions
committed on acknowledgement, delivered files removed. See docs/interlogger.md.
"""
