"""The Revio Pay integration: the only code that speaks Revio's HTTP API (an anti-corruption layer).

Provider JSON stops in client.py; everything else sees the types in contracts.py and the errors in errors.py.
"""
