#!/usr/bin/python3
"""A stand-in for PyDECNET in the hecnet demo: it reads its configuration
files, serves PyDECNET's HTTP API on a unix socket, and reports the circuit
to A2RTR as up unless the file named by --down-flag exists (touch it to
"drop the link", remove it to bring it back)."""
import argparse
import http.server
import json
import os
import signal
import socketserver
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--api-socket", required=True)
p.add_argument("--down-flag", required=True)
p.add_argument("config", nargs="+")
args = p.parse_args()

for c in args.config:
    with open(c) as f:
        print(f"pydecnet stand-in: read {c} ({len(f.read())} bytes)", flush=True)


class API(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/api":
            body = json.dumps({"node": "THEARK", "version": "stand-in"})
        elif self.path == "/api/circuits":
            state = "down" if os.path.exists(args.down_flag) else "up"
            body = json.dumps({"circuits": [{"name": "A2RTR", "state": state}]}) + f"\nA2RTR {state}\n"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, fmt, *a):
        pass

    # A unix socket has no client address: keep the handler from failing.
    def address_string(self):
        return "unix"


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
srv = Server(args.api_socket, API)
print(f"pydecnet stand-in: API on {args.api_socket}; started at {time.strftime('%H:%M:%S')}", flush=True)
try:
    srv.serve_forever()
finally:
    os.unlink(args.api_socket)
