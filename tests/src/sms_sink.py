#!/usr/bin/python3
"""A real HTTP server on 127.0.0.1 for the SMS tests (the standard library's http.server).

Usage: sms_sink.py --port PORT --dir DIR

PORT 0 picks a free port. Once listening, the port is written to DIR/port (atomically). Every
request, whatever its method, is recorded on arrival as DIR/requests/NNNNNN.json
({"seq", "method", "path", "headers": [[name, value], ...], "body", "body_base64"}), written to
a temporary name then renamed. Then, switched at run time by files in DIR:

  hang      present: the handler waits (checking each 0.1 s, 60 s at most) until it is gone
  fail      present: the answer is 500 {"status":"failed"}
  response  present: its bytes are the body of the 200 answer (JSON)

otherwise the answer is 200 {"status":"queued"}. The server exits when its parent goes away.
"""

import argparse
import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def write_atomic(path, data):
    tmp = os.path.join(os.path.dirname(path), ".tmp-" + os.path.basename(path))
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


class Sink:
    def __init__(self, root):
        self.root = root
        self.requests = os.path.join(root, "requests")
        os.makedirs(self.requests, exist_ok=True)
        self.lock = threading.Lock()
        self.count = 0

    def next_seq(self):
        with self.lock:
            self.count += 1
            return self.count

    def switch(self, name):
        return os.path.exists(os.path.join(self.root, name))


class Handler(BaseHTTPRequestHandler):
    server_version = "hx-sms-sink/1"
    sink = None  # set in main

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers, up to the empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def handle_any(self):
        sink = self.sink
        body = self.read_body()
        seq = sink.next_seq()
        record = {
            "seq": seq,
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode("utf-8", "replace"),
            "body_base64": base64.b64encode(body).decode("ascii"),
        }
        write_atomic(
            os.path.join(sink.requests, "%06d.json" % seq), json.dumps(record).encode("utf-8")
        )
        deadline = time.monotonic() + 60
        while sink.switch("hang") and time.monotonic() < deadline:
            time.sleep(0.1)
        if sink.switch("fail"):
            status, answer = 500, b'{"status":"failed"}'
        else:
            status, answer = 200, b'{"status":"queued"}'
            try:
                with open(os.path.join(sink.root, "response"), "rb") as f:
                    answer = f.read()
            except FileNotFoundError:
                pass
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer)
        except OSError:
            # The client gave up (e.g. its timeout while we hung): nothing to answer to.
            pass
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

    def log_message(self, format, *args):
        sys.stderr.write("sms_sink: %s %s\n" % (self.address_string(), format % args))
        sys.stderr.flush()


def watch_parent():
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dir", required=True)
    args = p.parse_args()
    threading.Thread(target=watch_parent, daemon=True).start()
    Handler.sink = Sink(args.dir)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    write_atomic(os.path.join(args.dir, "port"), str(port).encode())
    print("sms_sink listening on 127.0.0.1 port %d" % port, file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
