"""An asyncio service burning CPU in coroutines, for dynoprof's Python tests.

usage: python3 asyncio_app.py OUT_JSON DURATION_S

HANDLERS concurrent tasks run async_handler(), which awaits async_compute(); that
coroutine burns ~1 ms of CPU between `await asyncio.sleep(0)` calls, so samples land in
async_compute called (awaited) from async_handler. Writes {"pid": n, "version": str,
"computes": n} to OUT_JSON after DURATION_S or on SIGTERM; prints "ready" once the
handlers run.
"""
import asyncio
import json
import os
import signal
import sys
import time

HANDLERS = 4
state = {"computes": 0, "stopping": False, "announced": False}


async def async_compute(rounds):
    x = 0
    for _ in range(rounds):
        for i in range(10000):
            x = (x * 1103515245 + i) & 0xFFFFFFFF
        await asyncio.sleep(0)
    state["computes"] += 1
    return x


async def async_handler(deadline):
    while not state["stopping"] and time.monotonic() < deadline:
        await async_compute(5)
        if not state["announced"]:
            state["announced"] = True
            print("ready", flush=True)


async def serve(duration):
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: state.update(stopping=True))
    deadline = time.monotonic() + duration
    await asyncio.gather(*[async_handler(deadline) for _ in range(HANDLERS)])


def main():
    out_path, duration = sys.argv[1], float(sys.argv[2])
    asyncio.run(serve(duration))
    with open(out_path + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "version": sys.version.split()[0],
                   "computes": state["computes"]}, f)
    os.rename(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()
