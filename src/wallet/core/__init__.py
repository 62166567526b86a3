"""Shared building blocks: the error model, the API conventions, request ids and health probes."""
