"""space-dev: run Deta Space apps on your own machine."""

__version__ = "0.1.0"
