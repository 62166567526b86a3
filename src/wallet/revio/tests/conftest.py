"""Fixtures for the Revio adapters' tests: wallets funded through the sandbox."""

from wallet.transactions.tests.conftest import fund  # noqa: F401 - a fixture, used by name
