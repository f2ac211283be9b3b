"""Notifications (formats.md §9, issue 5): registrations, matching against job
status changes, the durable outbox and its delivery to callbacks or pull receivers.

:mod:`.model` holds the records shared by the store and the delivery side.
"""
