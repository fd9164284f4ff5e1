"""Run localstripe on 127.0.0.1 only, with no persistence.

localstripe's own entry point (`python -m localstripe`) listens on every
interface ("::") and pickles its whole store to /tmp/localstripe.pickle after
every write, reloading it at start-up. Tests need neither: they must only
listen on loopback, and several servers run side by side, each with its own
fresh in-memory state. So this wrapper builds localstripe's aiohttp app itself
and turns the pickle functions into no-ops.

    python localstripe_server.py --port 8420

Prints one line `localstripe listening on http://127.0.0.1:PORT` on stdout
once the socket accepts connections, then serves until killed (SIGTERM and
SIGINT stop it cleanly). `--port 0` picks a free port; the readiness line
names it. With `--exit-on-stdin-eof` it also stops when its stdin closes, so
a parent that holds the other end of a pipe cannot leave it behind, even when
the parent is killed outright.
"""

import argparse
import asyncio
import logging
import signal
import sys
import threading

from aiohttp import web

import localstripe.resources
import localstripe.server


def _no_persistence(*_args, **_kwargs):
    return None


# Store.__setitem__/__delitem__ and the server's save_store_middleware all go
# through these two methods: replacing them on the class disables every
# read and write of the pickle file.
localstripe.resources.Store.dump_to_disk = _no_persistence
localstripe.resources.Store.try_load_from_disk = _no_persistence


async def serve(host: str, port: int, access_log: bool, exit_on_eof: bool) -> None:
    logger = logging.getLogger("aiohttp.access")
    if access_log:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(logging.StreamHandler(sys.stderr))
    runner = web.AppRunner(
        localstripe.server.app, access_log=logger if access_log else None
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound_port = runner.addresses[0][1]
    print(f"localstripe listening on http://{host}:{bound_port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if exit_on_eof:
        def wait_for_eof() -> None:
            while sys.stdin.buffer.read(4096):
                pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_eof, daemon=True).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1",
                        help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--access-log", action="store_true",
                        help="log each request to stderr")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when stdin closes (the parent went away)")
    args = parser.parse_args()
    if not args.host.startswith("127.") and args.host not in ("::1", "localhost"):
        parser.error("refusing to bind a non-loopback address: " + args.host)
    asyncio.run(serve(args.host, args.port, args.access_log, args.exit_on_stdin_eof))


if __name__ == "__main__":
    main()
