#!/usr/bin/env python3
"""Launcher of Ferry's AWS emulator: moto in server mode, extended.

Starts moto's WSGI application (all services, multi-account through STS
AssumeRole) on one port, with

* DataSync replaced by ``datasync_ext`` (tags, execution listing, real-time
  executions that really copy objects between the emulated buckets, the
  caller's account and region in every ARN),
* S3 requests sent to (signed for) another Region than their bucket's refused by
  ``regions`` as S3 refuses them (301 PermanentRedirect, or 400
  IllegalLocationConstraintException when an opt-in Region is involved),
* every AWS request checked against AWS's API model by ``model_check``, refused
  with the service's own validation error when the model refuses it,
* AWS's default service quotas enforced by ``quotas`` (settable per account, and Region, through
  ``/ferry-emulator/quotas``),
* the fault switch and control endpoints of ``faults`` under ``/ferry-emulator/``.

Protocol: once the port is bound and the server is about to serve, exactly one
line ``READY <port>`` is written to stdout (and flushed); everything else the
process says goes to stderr. The process exits on SIGTERM/SIGINT, or when the
process given by ``--parent-pid`` is gone (polled every second).

Usage: ferry_emulator.py [--host 127.0.0.1] [--port 0] [--phase-seconds 1.0]
                         [--parent-pid PID] [--verbose]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument("--phase-seconds", type=float, default=1.0,
                        help="duration of each DataSync execution phase in seconds (default 1.0)")
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="exit when this process no longer exists (checked every second)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().split(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return True


def _watch_parent(pid: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        if not _process_alive(pid):
            print(f"ferry-emulator: parent process {pid} is gone; exiting", file=sys.stderr, flush=True)
            os._exit(0)


def main(argv: list[str] | None = None) -> int:
    began = time.monotonic()
    args = parse_args(argv)
    if "MOTO_ACCOUNT_ID" in os.environ:
        # It would put every caller into one account and defeat multi-account tests.
        print("ferry-emulator: ignoring MOTO_ACCOUNT_ID", file=sys.stderr)
        del os.environ["MOTO_ACCOUNT_ID"]

    # Only the READY line may reach stdout; moto and werkzeug print elsewhere.
    ready_out = sys.stdout
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

    import datasync_ext
    import faults
    import model_check
    import quotas
    import regions
    import transfer

    transfer.SETTINGS.phase_seconds = args.phase_seconds
    datasync_ext.install()

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    moto_app = DomainDispatcherApplication(create_backend_app)
    app = faults.ControlMiddleware(
        # S3 routes a request to its bucket's Region before anything else is looked at
        regions.RegionMiddleware(model_check.ModelCheckMiddleware(moto_app)),  # then AWS's API model
        faults.FaultSwitch(),
        config_get=transfer.SETTINGS.to_json,
        config_set=transfer.SETTINGS.update,
        quotas_get=quotas.control_get,
        quotas_set=quotas.control_set,
        quotas_delete=quotas.control_delete,
    )
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)

    stop = threading.Event()

    def shutdown(signum: int, _frame: object) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid, stop), daemon=True).start()

    print(f"READY {server.server_port}", file=ready_out, flush=True)
    print(f"ferry-emulator: serving on http://{args.host}:{server.server_port} "
          f"(phase {args.phase_seconds}s, ready in {time.monotonic() - began:.2f}s)", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
