"""The data dir: one TinyDB file written atomically under a file lock, and what it holds."""
