"""A real uvicorn server on loopback, in a thread of the test process, over any backend and database."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import uvicorn

from clearlm.server import ServerConfig, ServerState, create_app


class LiveServer:
    """``create_app(state)`` served by uvicorn on 127.0.0.1 (a free port). ``url`` is its /v1 base URL;
    ``call(coro_fn)`` runs a coroutine on the server's event loop (to hold a slot of its gate, say)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        config = uvicorn.Config(
            create_app(state), host="127.0.0.1", port=0, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.url = self.base + "/v1"

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def call(self, coro_fn, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(timeout)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.state.close()


@pytest.fixture
def serve(tmp_path):
    """``serve(backend, **config)`` starts a LiveServer (SQLite in tmp_path unless db_url is given)."""
    servers: list[LiveServer] = []

    def start(backend, embedder=None, **config) -> LiveServer:
        config.setdefault("db_url", f"sqlite:///{tmp_path / 'clearlm.db'}")
        config.setdefault("model", backend.name)
        state = ServerState(ServerConfig(**config), backend=backend, embedder=embedder)
        servers.append(LiveServer(state))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()
