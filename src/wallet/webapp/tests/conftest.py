"""The sandbox's webhook wiring for the journey test, and the ledger check after each test that used it."""

from wallet.transactions.tests.conftest import _books_balance_after_each_test, fund  # noqa: F401 - fixtures
from wallet.webhooks.tests.conftest import revio_webhook  # noqa: F401 - fixture, used by name
