"""Revio webhooks."""
