"""Providers: a dialect plus an endpoint, credentials and a capability profile, as data."""
