"""`space-dev` with aiohttp's client upstream instead of the proxy's own, for the "old" column of
bench/proxy.py: the same gate and the same relay to the browser, only the leg to the micro
differs. Run as `python bench/aiohttp_client.py up APP ...` (the arguments of `space-dev`).
"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web

import runtime.app.runtime
from runtime.cli.main import main
from runtime.serve.bodies import CollectedBody
from runtime.serve.forwarded import HOP_BY_HOP, ForwardedHeaders, connection_tokens
from runtime.serve.proxy import Proxy, upstream_url
from runtime.serve.upstream import UpstreamFailed, UpstreamUnavailable

Address = tuple[str, int]


class AiohttpAnswer:
    """An answer of aiohttp's client, read as the proxy reads an `UpstreamResponse`."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.body_read = False
        self.status = response.status
        self.reason = response.reason or ""
        named = HOP_BY_HOP | {"content-length"}
        named |= connection_tokens(response.headers.getall("Connection", ()))
        self.headers = [(n, v) for n, v in response.headers.items() if n.lower() not in named]
        self.length_header = response.headers.get("Content-Length")
        self.content_length = response.content_length

    async def read(self) -> bytes:
        self.body_read = True
        try:
            return await self._response.read()
        except aiohttp.ClientError as exc:
            raise UpstreamFailed(str(exc) or type(exc).__name__) from exc

    async def next_chunk(self) -> bytes:
        self.body_read = True
        try:
            return await self._response.content.readany()
        except aiohttp.ClientError as exc:
            raise UpstreamFailed(str(exc) or type(exc).__name__) from exc

    def close(self) -> None:
        self._response.close()


class AiohttpProxy(Proxy):
    """The proxy with every forwarded request sent through aiohttp's client session (the one
    the proxy keeps for WebSockets), as the proxy did before it had its own client."""

    async def forward(
        self,
        request: web.Request,
        address: Address,
        path_qs: str,
        headers: ForwardedHeaders,
        body: CollectedBody | None = None,
    ) -> web.StreamResponse:
        url = upstream_url("http", address, path_qs)
        sent = headers.as_multidict()
        data: object = None
        if body is not None:
            sent["Content-Length"] = str(body.size)
            data = body.chunks()
        elif request.body_exists:
            if request.content_length is not None:
                sent["Content-Length"] = str(request.content_length)
            data = request.content
        with self.busy(address):
            try:
                upstream_cm = self.session.request(
                    request.method,
                    url,
                    headers=sent,
                    data=data,
                    allow_redirects=False,
                    compress=None,
                )
                upstream = await upstream_cm.__aenter__()
            except aiohttp.ClientConnectorError as exc:
                raise UpstreamUnavailable(str(exc)) from exc
            except aiohttp.ClientError as exc:
                raise UpstreamFailed(str(exc) or type(exc).__name__) from exc
            answer = AiohttpAnswer(upstream)
            try:
                return await self._relay(request, answer)  # type: ignore[arg-type]
            finally:
                if not answer.body_read:
                    # Not pooled: aiohttp's client misreads the next answer on a connection
                    # after a 304 with no Content-Length, and yields empty pieces without end.
                    upstream.close()
                await upstream_cm.__aexit__(None, None, None)


if __name__ == "__main__":
    runtime.app.runtime.Proxy = AiohttpProxy  # type: ignore[misc]
    sys.exit(main())
