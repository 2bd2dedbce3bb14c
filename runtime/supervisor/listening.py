"""Which interfaces a micro's port listens on, read from the kernel's socket tables."""

from __future__ import annotations

from pathlib import Path

# /proc/net/tcp{,6} columns: "sl local_address rem_address st ..."; 0A is LISTEN.
_LISTEN = "0A"
_ANY_V4 = "00000000"
_ANY_V6 = "0" * 32
_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def wildcard_listeners(table: str, port: int) -> list[str]:
    """The all-interfaces addresses (`0.0.0.0`, `::`) listening on `port` in one socket table."""
    found = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != _LISTEN:
            continue
        address, _, hex_port = fields[1].partition(":")
        if not hex_port or int(hex_port, 16) != port:
            continue
        if address == _ANY_V4:
            found.append(f"0.0.0.0:{port}")
        elif address == _ANY_V6:
            found.append(f"[::]:{port}")
    return found


def listens_on_all_interfaces(port: int) -> list[str]:
    """Where `port` is open to other machines (empty when only loopback, or unknown)."""
    found: list[str] = []
    for path in _TABLES:
        try:
            found += wildcard_listeners(path.read_text(), port)
        except OSError:
            continue  # no /proc (not Linux) or no IPv6: nothing can be said
    return found
