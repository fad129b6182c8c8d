"""The spend ledger: what each upstream attempt cost, and reports over it."""
