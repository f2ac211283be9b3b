"""The ``glite-lb-*`` consumer commands, drop-in compatible with the original tools.

Each module is one command with ``main(argv=None) -> int`` and the exact options,
output lines and exit statuses of cli.md:

=========================  ==========================================  ==========
command                    module                                      cli.md
=========================  ==========================================  ==========
``glite-lb-job_reg``       :mod:`.job_reg` - register a job            §3.1
``glite-lb-job_status``    :mod:`.job_status` - print job states       §3.3
``glite-lb-job_log``       :mod:`.job_log` - list a job's events       §3.5
``glite-lb-state_history`` :mod:`.state_history` - state after events  §3.6
``glite-lb-user_jobs``     :mod:`.user_jobs` - the caller's jobs       §3.7
``glite-lb-query_ext``     :mod:`.query_ext` - conditional queries     §3.8
``glite-lb-logevent``      :mod:`.logevent` - log one event            §3.2
``glite-lb-<state>.sh``    :mod:`.state_scripts` - the WMS chain up    §3.19
                           to a state (waiting ... cancelled)
=========================  ==========================================  ==========

They talk to the server through the blocking clients of :mod:`lbtx.cli.query_client`
(legacy query protocol) and :mod:`lbtx.cli.store_client` (box protocol); the
server address and timeouts come from :mod:`lbtx.cli.environment`.
"""
