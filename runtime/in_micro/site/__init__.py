"""The folder every python micro finds first on PYTHONPATH: its modules are top-level there."""
