"""The micros' processes: setup, start, readiness, restarts, reload swaps, their log."""
