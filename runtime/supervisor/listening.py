"""Where a micro listens, read from the kernel's socket tables: which interfaces its port is
open on, and which loopback ports its process group holds open for connections. Where the
system shows no socket tables (not Linux), nothing is known: every answer is empty."""

from __future__ import annotations

from runtime import system

# /proc/net/tcp{,6} columns: "sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout
# inode ..."; 0A is LISTEN.
_LISTEN = "0A"
_ANY_V4 = "00000000"
_ANY_V6 = "0" * 32
_LOOPBACK_V4 = "0100007F"  # 127.0.0.1, as the kernel writes it (little-endian words)
_LOOPBACK_V6 = "00000000000000000000000001000000"  # ::1

Address = tuple[str, int]  # (host to connect to, port)


def wildcard_listeners(table: str, port: int) -> list[str]:
    """The all-interfaces addresses (`0.0.0.0`, `::`) listening on `port` in one socket table."""
    found = []
    for address, listen_port, _inode in _listeners(table):
        if listen_port != port:
            continue
        if address == _ANY_V4:
            found.append(f"0.0.0.0:{port}")
        elif address == _ANY_V6:
            found.append(f"[::]:{port}")
    return found


def listens_on_all_interfaces(port: int) -> list[str]:
    """Where `port` is open to other machines (empty when only loopback, or unknown)."""
    found: list[str] = []
    for version in (4, 6):
        table = system.socket_table(version)
        if table is not None:  # None: no socket tables (not Linux) or no IPv6
            found += wildcard_listeners(table, port)
    return found


def tables_readable() -> bool:
    """Whether this system has the kernel's socket table to read (Linux)."""
    return system.has_socket_tables()


def loopback_listeners() -> dict[int, Address]:
    """Every port open for connections on loopback (or on every interface, which includes
    loopback), with the address to reach it at."""
    return {port: where for port, (where, _inode) in _loopback_sockets().items()}


def group_loopback_ports(pgid: int) -> dict[int, Address]:
    """The loopback ports the processes of group `pgid` listen on (empty when unknown).

    Reads each member's open files, then the socket tables if it has any socket: tens of
    milliseconds on a busy machine, so callers ask now and then, off the event loop."""
    inodes: set[str] = set()
    for proc in system.processes() or ():
        if proc.pgrp == pgid and not proc.zombie:
            inodes |= system.socket_inodes(proc.pid)
    if not inodes:
        return {}
    return {port: where for port, (where, inode) in _loopback_sockets().items() if inode in inodes}


def _loopback_sockets() -> dict[int, tuple[Address, str]]:
    """port -> ((host, port), inode) for each listening socket reachable on loopback; IPv4
    wins where a port is open on both, as 127.0.0.1 is what servers are told ($HOST)."""
    found: dict[int, tuple[Address, str]] = {}
    for version, host, own, wildcard in (
        (6, "::1", _LOOPBACK_V6, _ANY_V6),
        (4, "127.0.0.1", _LOOPBACK_V4, _ANY_V4),
    ):
        table = system.socket_table(version)
        if table is None:
            continue
        for address, port, inode in _listeners(table):
            if address in (own, wildcard):
                found[port] = ((host, port), inode)
    return found


def _listeners(table: str) -> list[tuple[str, int, str]]:
    """(local address in hex, port, socket inode) of each listening socket in one table."""
    found = []
    for line in table.splitlines()[1:]:
        if " 0A" not in line:
            continue  # most lines are connections: not split at all (the check follows)
        fields = line.split()
        if len(fields) < 4 or fields[3] != _LISTEN:
            continue
        address, _, hex_port = fields[1].partition(":")
        if hex_port:
            found.append((address, int(hex_port, 16), fields[9] if len(fields) > 9 else ""))
    return found
