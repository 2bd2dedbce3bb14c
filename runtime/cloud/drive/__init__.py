"""The Deta Drive emulator: files on disk behind the Drive HTTP API."""
