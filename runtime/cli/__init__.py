"""The `space-dev` command line: its parser and `up` (main.py), and the data-dir commands."""
