"""Serve an EchoServer over gRPC until killed; prints its address on the first line."""

from __future__ import annotations

import sys

import anyio

from ._echo import serve_in_child


async def main(port: int) -> None:
    async with anyio.create_task_group() as tg:
        address = await tg.start(serve_in_child, port)
        print(address, flush=True)


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]))
