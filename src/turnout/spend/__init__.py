"""The spend ledger: one durable record per upstream attempt (who, what, how many tokens,
what it cost), journaled locally before the attempt is sent and written to the tenancy
database in batches, off the request path."""
