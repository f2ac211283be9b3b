"""twistd plug-ins of lbtx: ``twistd lb-server`` (more daemons follow)."""

from twisted.application.service import ServiceMaker

lb_server = ServiceMaker("lbtx server", "lbtx.server.tap",
                         "lbtx L&B bookkeeping server: event intake, job states, queries",
                         "lb-server")
