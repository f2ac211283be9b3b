"""twistd plug-ins of lbtx: ``twistd lb-server`` (more daemons follow)."""

from twisted.application.service import ServiceMaker

lb_server = ServiceMaker("lbtx server", "lbtx.server.tap",
                         "lbtx L&B bookkeeping server: event intake, job states, queries",
                         "lb-server")
lb_logger = ServiceMaker("lbtx logger", "lbtx.logger.tap",
                         "lbtx local logger: durable local spool of producers' events",
                         "lb-logger")
lb_interlogger = ServiceMaker("lbtx interlogger", "lbtx.interlogger.tap",
                              "lbtx interlogger: delivers a logger's spool to the servers",
                              "lb-interlogger")
