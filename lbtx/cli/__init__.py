"""Command-line front ends: ``lbtx`` and the glite-lb compatible commands."""
