"""Tier 3: container tests (see conftest.py)."""
