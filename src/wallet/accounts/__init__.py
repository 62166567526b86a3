"""Accounts: users, roles and JWT authentication."""
