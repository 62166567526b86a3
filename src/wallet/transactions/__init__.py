"""Deposits and withdrawals."""
