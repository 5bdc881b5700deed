#!/usr/bin/python3
"""A real SMTP server on 127.0.0.1 for the email tests (aiosmtpd, Debian's python3-aiosmtpd).

Usage: smtp_sink.py --port PORT --dir DIR [--auth USER:PASS]

PORT 0 picks a free port. Once listening, the port is written to DIR/port (atomically). Every
delivered message becomes DIR/mail/NNNNNN.eml (the DATA bytes as received, dot-unstuffed) with
its envelope in DIR/mail/NNNNNN.json ({"mail_from", "rcpt_tos", "auth_user", "peer"}); the
.json is renamed into place before the .eml, so a reader that sees the .eml sees both.

--auth requires AUTH (PLAIN or LOGIN, over plain SMTP: loopback only) with these credentials
before MAIL FROM. The server exits when its parent process goes away.
"""

import argparse
import asyncio
import json
import os
import sys
import threading
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def write_atomic(path, data):
    tmp = os.path.join(os.path.dirname(path), ".tmp-" + os.path.basename(path))
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


class Handler:
    def __init__(self, mail_dir):
        self.mail_dir = mail_dir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        # The event loop runs one handler at a time: the counter needs no lock.
        self.count += 1
        stem = os.path.join(self.mail_dir, "%06d" % self.count)
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        auth = session.auth_data
        if isinstance(auth, LoginPassword):
            auth = auth.login.decode("utf-8", "replace")
        elif auth is not None:
            auth = str(auth)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "auth_user": auth,
            "peer": list(session.peer) if session.peer else None,
        }
        write_atomic(stem + ".json", json.dumps(meta).encode("utf-8"))
        write_atomic(stem + ".eml", raw)
        return "250 OK: queued as %06d" % self.count


def make_authenticator(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode("utf-8")
            and auth_data.password == password.encode("utf-8")
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


def watch_parent():
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


async def serve(args):
    mail_dir = os.path.join(args.dir, "mail")
    os.makedirs(mail_dir, exist_ok=True)
    handler = Handler(mail_dir)
    kwargs = dict(hostname="hx-smtp-sink", enable_SMTPUTF8=True, decode_data=False)
    if args.auth:
        user, _, password = args.auth.partition(":")
        kwargs.update(
            authenticator=make_authenticator(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **kwargs), "127.0.0.1", args.port)
    port = server.sockets[0].getsockname()[1]
    write_atomic(os.path.join(args.dir, "port"), str(port).encode())
    print("smtp_sink listening on 127.0.0.1 port %d" % port, file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dir", required=True)
    p.add_argument("--auth", default=None, help="USER:PASS")
    args = p.parse_args()
    threading.Thread(target=watch_parent, daemon=True).start()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
