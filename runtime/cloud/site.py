"""The data services as the runtime serves them: a local TLS port for micros (the SDKs speak
only HTTPS), the same API on each app's origin for its pages, and the variables that point a
micro's SDK at them."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from aiohttp import web

from runtime.cloud.data import DataServices
from runtime.cloud.notices import Notices
from runtime.cloud.service import (
    BROWSER_PREFIXES,
    MicroApi,
    ProjectKeys,
    browser_path,
    dispatch,
    split_api_path,
)
from runtime.cloud.tls import TlsFiles, ensure_tls, server_ssl_context
from runtime.serve.client_limits import ClientLimits, GuardedRunner

# Where the micro-side Python `deta` module lives: put first on a python micro's PYTHONPATH.
PYTHON_SITE = Path(__file__).resolve().parents[1] / "in_micro" / "site"
LOOPBACK = "127.0.0.1"

# The session check of an app origin: True when the request's session may use the app's data.
SessionCheck = Callable[[web.Request], bool]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"errors": [message]}, status=status)


class DataSite:
    """Deta Base and Drive for every app of one runtime."""

    def __init__(
        self,
        data_dir: Path,
        project_keys: Callable[[], Mapping[str, str]],
        limits: ClientLimits,
        *,
        ephemeral: bool = False,
        say: Callable[[str], None] | None = None,
        settings_pages: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        self.data = DataServices(data_dir, ephemeral=ephemeral)
        self._limits = limits  # the runtime's limits on clients: micros are clients here
        # What a micro's data call got wrong, for the runtime's log (`say`), once a minute a line,
        # with each app's settings page (`settings_pages`), which shows its project key.
        self.notices = Notices(say) if say is not None else None
        self._settings_pages = settings_pages
        self._tls_dir = data_dir / "tls"
        self._keys = ProjectKeys(project_keys)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.tls: TlsFiles | None = None

    async def start(self) -> None:
        """Make (once) the certificate authority and serve the API on a free loopback port."""
        self.tls = ensure_tls(self._tls_dir)
        api = MicroApi(self.data, self._keys, self.notices, self._settings_pages)
        self._runner = GuardedRunner(
            api.application(),
            self._limits,
            lambda _, message: _error(413, message),
            access_log=None,
            handle_signals=False,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0, ssl_context=server_ssl_context(self.tls))
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self.data.close()

    def micro_variables(self, inherited_pythonpath: str | None) -> dict[str, str]:
        """What a micro's SDK needs to reach the API here and trust its certificate."""
        assert self.tls is not None, "DataSite.start() was not awaited"
        host = f"{LOOPBACK}:{self.port}"
        bundle = str(self.tls.bundle)
        path = [str(PYTHON_SITE), *([inherited_pythonpath] if inherited_pythonpath else [])]
        return {
            "DETA_BASE_HOST": host,
            "DETA_DRIVE_HOST": host,
            "DETA_BASE_ROOT_ENDPOINT": f"https://{host}/v1",  # deta-go takes a whole URL
            "DETA_DRIVE_ROOT_ENDPOINT": f"https://{host}/v1",
            "NODE_EXTRA_CA_CERTS": str(self.tls.ca_cert),
            # A bundle of the system's authorities and ours: other HTTPS calls still verify.
            "SSL_CERT_FILE": bundle,
            "REQUESTS_CA_BUNDLE": bundle,
            "PYTHONPATH": os.pathsep.join(path),
        }

    def add_browser_routes(
        self, app: web.Application, app_name: str, allowed: SessionCheck
    ) -> None:
        """`/__space/v0/base/...` and `/__space/v0/drive/...` on an app's origin, for its pages
        (Deta's browser SDK): the session decides; the id in the path and the dummy key the
        SDK sends are not the app's and are ignored."""

        async def handle(request: web.Request) -> web.StreamResponse:
            if not allowed(request):
                return _error(401, "Unauthorized")
            found = browser_path(request.rel_url.raw_path)
            parts = split_api_path(found[1]) if found else None
            if found is None or parts is None:
                return _error(404, "not a Base or Drive API path: .../v1/<id>/<name>/...")
            _, name, rest = parts
            return await dispatch(request, self.data, app_name, name, rest, found[0], self.notices)

        for prefix in BROWSER_PREFIXES.values():
            app.router.add_route("*", prefix + "/{tail:.*}", handle)
