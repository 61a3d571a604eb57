"""The grafana stand-in: admin account, provisioned data sources and the
parts of the HTTP API a user checks a stack with."""
import base64
import glob
import json
import os
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml


def setting(name, default):
    f = os.environ.get(name + "__FILE")
    if f:
        with open(f) as fh:
            return fh.read().strip()
    return os.environ.get(name, default)


USER = setting("GF_SECURITY_ADMIN_USER", "admin")
PASSWORD = setting("GF_SECURITY_ADMIN_PASSWORD", "admin")
PORT = int(setting("GF_SERVER_HTTP_PORT", "3000"))
PROVISIONING = setting("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")


def datasources():
    out = []
    for path in sorted(glob.glob(PROVISIONING + "/datasources/*.y*ml")):
        with open(path) as fh:
            doc = yaml.safe_load(fh) or {}
        for ds in doc.get("datasources") or []:
            ds = dict(ds)
            ds["id"] = len(out) + 1
            ds.setdefault("uid", ds.get("name", str(ds["id"])).lower())
            out.append(ds)
            print(f"provisioned data source {ds.get('name')!r} ({ds.get('type')}) at {ds.get('url')}", flush=True)
    return out


DATASOURCES = datasources()


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, body, kind="application/json"):
        data = body if isinstance(body, bytes) else (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            return user == USER and pw == PASSWORD
        return False

    def do_GET(self):
        path = self.path
        if path == "/api/health":
            return self.reply(200, {"database": "ok", "version": "stand-in"})
        if path in ("/", "/login"):
            return self.reply(200, b"<!DOCTYPE html><title>Grafana</title><h1>Welcome to Grafana</h1>\n", "text/html")
        if not self.authorized():
            return self.reply(401, {"message": "Unauthorized"})
        if path == "/api/datasources":
            return self.reply(200, DATASOURCES)
        if path.startswith("/api/datasources/proxy/"):
            rest = path[len("/api/datasources/proxy/"):]
            if rest.startswith("uid/"):
                key, _, sub = rest[4:].partition("/")
                ds = next((d for d in DATASOURCES if d["uid"] == key), None)
            else:
                key, _, sub = rest.partition("/")
                ds = next((d for d in DATASOURCES if str(d["id"]) == key), None)
            if ds is None:
                return self.reply(404, {"message": "Data source not found"})
            try:
                with urllib.request.urlopen(ds["url"].rstrip("/") + "/" + sub, timeout=10) as r:
                    return self.reply(r.status, r.read(), r.headers.get("Content-Type", "application/json"))
            except urllib.error.HTTPError as e:
                return self.reply(e.code, e.read())
            except OSError as e:
                return self.reply(502, {"message": f"data source proxy error: {e}"})
        return self.reply(404, {"message": "Not found"})

    def log_message(self, fmt, *args):
        print("t=request " + (fmt % args), flush=True)


print(f"HTTP Server Listen address=[::]:{PORT}", flush=True)
server = ThreadingHTTPServer(("", PORT), Handler)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
