"""Pytest plugins of fixtures used by more than one test folder, registered in tests/conftest.py."""
