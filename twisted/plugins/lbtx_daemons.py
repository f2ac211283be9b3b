"""twistd plug-ins of lbtx: ``twistd lb-server``, ``lb-logger`` and ``lb-interlogger``.

Each exits with a failure status when it stops because it cannot run (its store,
spool or a port unavailable; :mod:`lbtx.daemon_exit`), where twistd alone would
exit 0.
"""

from twisted.application.service import ServiceMaker


class _DaemonMaker(ServiceMaker):
    """A ServiceMaker whose daemon exits non-zero when a failure stops it."""

    def makeService(self, options):
        from lbtx.daemon_exit import exit_nonzero_on_failure

        exit_nonzero_on_failure()
        return super().makeService(options)


lb_server = _DaemonMaker("lbtx server", "lbtx.server.tap",
                         "lbtx L&B bookkeeping server: event intake, job states, queries",
                         "lb-server")
lb_logger = _DaemonMaker("lbtx logger", "lbtx.logger.tap",
                         "lbtx local logger: durable local spool of producers' events",
                         "lb-logger")
lb_interlogger = _DaemonMaker("lbtx interlogger", "lbtx.interlogger.tap",
                              "lbtx interlogger: delivers a logger's spool to the servers",
                              "lb-interlogger")
