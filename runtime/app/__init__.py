"""The app origins wired together (runtime.py), and hot reload driving them (reload.py)."""
