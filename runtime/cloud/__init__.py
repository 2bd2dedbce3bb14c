"""The personal cloud's services, emulated locally: scheduled actions, Deta Base and Drive, and
the TLS they are served over."""
