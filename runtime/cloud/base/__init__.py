"""The Deta Base emulator: query and update semantics, SQLite storage, the HTTP API."""
