"""Helpers that only tests share (fixtures themselves are in tests/conftest.py)."""
