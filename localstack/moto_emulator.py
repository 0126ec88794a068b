#!/usr/bin/env python3
"""Run moto's AWS emulator (DynamoDB, S3, ...) on loopback for custdata.

For machines without Docker/LocalStack, and for the test suites, which start
it themselves. Run it with the tools venv: target/venv/bin/python (see
scripts/ensure-tools.sh).

Protocol, so that a parent process can drive it:
  * it binds 127.0.0.1 only (never 0.0.0.0: a dev emulator with dummy
    credentials must not be reachable from the network);
  * --port 0 lets the OS pick a free port, so parallel test runs don't collide;
  * once it accepts connections it prints exactly one line to stdout,
    `READY http://127.0.0.1:<port>`, and flushes; nothing else goes to stdout
    (logs go to stderr);
  * with --until-stdin-closes it stops when its stdin reaches EOF: the parent
    keeps a pipe to our stdin open, and when the parent exits, even by a crash
    or SIGKILL, the kernel closes the pipe and the emulator goes with it.
    (So do not use this flag with stdin at /dev/null: it would stop at once.)
  * otherwise it runs until SIGINT (Ctrl-C) or SIGTERM.
It then stops the server and exits 0. It exits 1 if it cannot bind.

All state is in memory and is lost when it stops.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

HOST = "127.0.0.1"


class _OneRequestAtATime:
    """WSGI wrapper that lets one request at a time into moto.

    moto rolls a failed TransactWriteItems back by restoring a copy of the whole
    table taken when the call began, so two concurrent calls can undo each
    other's writes: with 100 concurrent transactions, 50 answered success and
    only 43 of their increments were left. DynamoDB is linearizable per item and
    never does that, so the emulator serializes requests; connections are still
    accepted on threads.
    """

    def __init__(self, app) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            return list(self._app(environ, start_response))


def _transactions_copy_only_what_they_touch() -> None:
    """Make a TransactWriteItems cost what it writes, not what the table holds.

    moto keeps a failed transaction undoable by deep-copying the whole table once per
    action before applying any (a 100-action transaction on a 10,000-item table copies a
    million items); a bulk import then runs at about a row a second and the emulator grows
    past 10 GB. Here the table "copy" moto takes is the live table itself, and this wrapper
    keeps copies of only the items the transaction names, putting them back if moto
    cancels the transaction. Requests are serialized (`_OneRequestAtATime`), so nothing
    else changes those items meanwhile.
    """
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    class _TablesAreNotCopied:
        @staticmethod
        def deepcopy(value):
            return value if isinstance(value, Table) else copy.deepcopy(value)

    models.copy = _TablesAreNotCopied
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        saved = []
        for entry in transact_items:
            try:
                op_type, op = next(iter(entry.items()))
                table = self.tables[op["TableName"]]
                if op_type == "Put":
                    names = [table.hash_key_attr, table.range_key_attr]
                    key = {name: op["Item"][name] for name in names if name is not None}
                else:
                    key = op["Key"]
                hash_value, range_value = self.get_keys_value(table, key)
            except Exception:  # noqa: BLE001 - moto refuses the malformed action itself
                continue
            before = copy.deepcopy(table.get_item(hash_value, range_value))
            saved.append((table, hash_value, range_value, before))
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, before in reversed(saved):
                table.delete_item(hash_value, range_value)
                if before is None:
                    continue
                if range_value is None:
                    table.items[hash_value] = before
                else:
                    table.items[hash_value][range_value] = before
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items


class _Server(ThreadedMotoServer):
    """ThreadedMotoServer that reports a failed bind instead of hanging.

    Upstream start() waits, without a timeout, for an event that is only set
    after the socket is bound; if binding fails (port in use) the server
    thread dies and start() would wait forever.
    """

    bind_error: BaseException | None = None

    def _server_entry(self) -> None:
        try:
            app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()
        except BaseException as exc:  # noqa: BLE001 - reported by main()
            self.bind_error = exc
            self._server_ready_event.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=5000, help="TCP port on 127.0.0.1; 0 = any free port (default 5000)"
    )
    parser.add_argument(
        "--until-stdin-closes",
        action="store_true",
        help="stop when stdin reaches EOF (ties the emulator's life to its parent's)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    # werkzeug logs one line per request at INFO; the tests make thousands.
    logging.basicConfig(stream=sys.stderr, level=logging.INFO if args.verbose else logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    # Install before starting so a signal sent right after READY is not lost.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    # verbose=False: upstream would print a "Starting ..." line to stdout,
    # which must hold nothing but the READY line.
    _transactions_copy_only_what_they_touch()
    server = _Server(ip_address=HOST, port=args.port, verbose=False)
    server.start()
    if server.bind_error is not None:
        # werkzeug has already explained an OSError (then raised SystemExit).
        err = server.bind_error
        detail = "" if isinstance(err, SystemExit) else f": {err!r}"
        print(f"moto_emulator: cannot listen on {HOST}:{args.port}{detail}", file=sys.stderr)
        return 1

    # With port 0 the real port is only known after bind: ask the server
    # (werkzeug's server_address), never echo the requested one.
    _host, port = server.get_host_and_port()
    sys.stdout.write(f"READY http://{HOST}:{port}\n")
    sys.stdout.flush()

    if args.until_stdin_closes:

        def wait_for_eof() -> None:
            try:
                while sys.stdin.buffer.read(65536):
                    pass  # anything the parent writes is ignored
            except (OSError, ValueError):
                pass  # a broken stdin counts as closed
            stop.set()

        threading.Thread(target=wait_for_eof, name="stdin-eof", daemon=True).start()

    # Wait in slices so that signal handlers run promptly in the main thread.
    while not stop.wait(0.5):
        pass

    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
