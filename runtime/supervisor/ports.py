"""Ports: which are free, and which each app gets."""

from __future__ import annotations

import socket

from runtime.config import DEFAULT_PORT


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    """Whether `port` on `host` can be listened on now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def assign_ports(wanted: list[int | None], host: str) -> list[int]:
    """Each app's port: as configured, else the next free one after the previous app's."""
    taken = {p for p in wanted if p}
    ports: list[int] = []
    candidate = DEFAULT_PORT
    for port in wanted:
        if port is not None:
            ports.append(port)  # 0 stays 0: the OS picks one when the app starts listening
            candidate = max(candidate, port + 1)
            continue
        while candidate in taken or not port_free(host, candidate):
            candidate += 1
        ports.append(candidate)
        taken.add(candidate)
        candidate += 1
    return ports
