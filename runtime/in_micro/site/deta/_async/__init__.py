"""The asyncio client: `deta._async.client.AsyncBase`."""
