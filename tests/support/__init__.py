"""Test support shared by every test folder (importable as ``support``)."""
