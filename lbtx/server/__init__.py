"""The bookkeeping server: intake, stores, queries."""
