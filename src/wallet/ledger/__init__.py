"""Ledger: the double-entry books behind every balance."""
