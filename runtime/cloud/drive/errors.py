"""What can go wrong with a Drive request, one class per answer the API gives."""

from __future__ import annotations

from ...errors import SpaceDevError


class DriveError(SpaceDevError):
    """A Drive request that cannot be done as asked."""


class BadName(DriveError):
    """A drive or file name Deta would have refused, or a bad part number or list bound."""


class NoSuchUpload(DriveError):
    """A chunked upload that was never started, is finished, aborted, or for another file."""

    status = 404


class UploadBusy(DriveError):
    """A chunked upload being completed while another call touches it."""

    status = 409


class TooLarge(DriveError):
    """A body longer than the route allows (413)."""

    status = 413
