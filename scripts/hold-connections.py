#!/usr/bin/env python3
"""Many concurrent established TCP connections for scripts/bench-connections.sh. A process may
hold only as many as its open-file limit allows (20,000 on the CI machine, not raisable there),
so the benchmark runs one server and one client process per port.

  hold-connections.py serve PORT                 accept connections on PORT and hold them
  hold-connections.py connect IP PORT N SECONDS  open N connections to IP:PORT, print how many
                                                 succeeded and failed, hold them SECONDS
"""
import asyncio
import resource
import sys

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(port):
    held = []

    async def accept(reader, writer):
        held.append(writer)  # keep it open; never read or write

    server = await asyncio.start_server(accept, "0.0.0.0", port, backlog=65535)
    await server.serve_forever()


async def connect(ip, port, count, seconds):
    held = []
    failed = 0
    gate = asyncio.Semaphore(256)

    async def one():
        nonlocal failed
        async with gate:
            try:
                held.append(await asyncio.open_connection(ip, port))
            except OSError:
                failed += 1

    await asyncio.gather(*(one() for _ in range(count)))
    print(len(held), failed, flush=True)
    await asyncio.sleep(seconds)


if sys.argv[1] == "serve":
    asyncio.run(serve(int(sys.argv[2])))
else:
    asyncio.run(connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))
