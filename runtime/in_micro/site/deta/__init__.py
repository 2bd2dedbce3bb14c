"""Deta's Python SDK (deta-python 1.x) for Space apps, written on the standard library alone.

`from deta import Deta` in a micro finds this module; Base and Drive calls go to the hosts in
DETA_BASE_HOST and DETA_DRIVE_HOST (Deta's own by default) over HTTPS, verified with the default
TLS context, which trusts what SSL_CERT_FILE names.
"""

from __future__ import annotations

from typing import Any

from ._async.client import AsyncBase, _AsyncBase
from .base import FetchResponse, Util, _Base
from .drive import DriveStreamingBody, _Drive
from .service import DetaError
from .utils import _get_project_key_id

__version__ = "1.2.0"

__all__ = [
    "AsyncBase",
    "Base",
    "Deta",
    "DetaError",
    "Drive",
    "DriveStreamingBody",
    "FetchResponse",
    "Util",
    "send_email",
]


def Base(name: str) -> _Base:
    """A Base of the project whose key is in DETA_PROJECT_KEY."""
    project_key, project_id = _get_project_key_id()
    return _Base(name, project_key, project_id)


def Drive(name: str) -> _Drive:
    """A Drive of the project whose key is in DETA_PROJECT_KEY."""
    project_key, project_id = _get_project_key_id()
    return _Drive(name, project_key, project_id)


class Deta:
    """A project: its key (DETA_PROJECT_KEY unless given) and its id (the key's part before `_`)."""

    def __init__(self, project_key: str | None = None, *, project_id: str | None = None) -> None:
        self.project_key, self.project_id = _get_project_key_id(project_key, project_id)

    def Base(self, name: str, host: str | None = None) -> _Base:
        return _Base(name, self.project_key, self.project_id, host)

    def AsyncBase(self, name: str, host: str | None = None) -> _AsyncBase:
        return _AsyncBase(name, self.project_key, self.project_id, host)

    def Drive(self, name: str, host: str | None = None) -> _Drive:
        return _Drive(name, self.project_key, self.project_id, host)

    def send_email(self, to: Any, subject: str, message: str, charset: str = "UTF-8") -> None:
        send_email(to, subject, message, charset)


def send_email(to: Any, subject: str, message: str, charset: str = "UTF-8") -> None:
    """Deta Cloud's mailer, which Space never offered: raises, saying so."""
    raise RuntimeError(
        "deta.send_email used Deta Cloud's mailer, which Deta Space does not have; "
        "send mail through an email provider's API instead"
    )
