"""Test settings whose URLconf adds the core tests' extra routes, for a server started in a subprocess."""

from config.settings.test import *  # noqa: F403

ROOT_URLCONF = "wallet.core.tests.urls"
