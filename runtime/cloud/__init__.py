"""The personal cloud's data services, emulated locally: Deta Base and Drive, the TLS they are
served over, and exports and imports of their data."""
