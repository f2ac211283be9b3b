"""lbtx: a Logging and Bookkeeping service for batch and grid jobs, on Twisted."""

__version__ = "0.1.0"
