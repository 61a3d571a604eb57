"""The pgadmin stand-in: a login with the default account and a query tool
(POST /sqleditor/query, JSON {host, port, user, password, database, sql})
that runs SQL on a PostgreSQL server through psycopg2."""
import json
import os
import secrets
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2


def setting(name):
    f = os.environ.get(name + "_FILE")
    if f:
        with open(f) as fh:
            return fh.read().strip()
    return os.environ.get(name)


EMAIL = setting("PGADMIN_DEFAULT_EMAIL")
PASSWORD = setting("PGADMIN_DEFAULT_PASSWORD")
if not EMAIL or not PASSWORD:
    print("You need to define the PGADMIN_DEFAULT_EMAIL and PGADMIN_DEFAULT_PASSWORD "
          "or PGADMIN_DEFAULT_PASSWORD_FILE environment variables.", file=sys.stderr)
    sys.exit(1)
PORT = int(os.environ.get("PGADMIN_LISTEN_PORT") or 80)
SESSIONS = set()


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, body, kind="application/json", headers=()):
        data = body if isinstance(body, bytes) else (json.dumps(body, default=str) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def session(self):
        for part in self.headers.get("Cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "pga4_session" and v in SESSIONS:
                return True
        return False

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()

    def do_GET(self):
        if self.path == "/misc/ping":
            return self.reply(200, b"PING", "text/plain")
        if self.path in ("/", "/login", "/browser/"):
            return self.reply(200, b"<!DOCTYPE html><title>pgAdmin 4</title><form method=post action=/authenticate/login>"
                              b"<input name=email><input name=password type=password><button>Login</button></form>\n",
                              "text/html")
        return self.reply(404, {"errormsg": "not found"})

    def do_POST(self):
        if self.path == "/authenticate/login":
            form = urllib.parse.parse_qs(self.body())
            if form.get("email", [""])[0] != EMAIL or form.get("password", [""])[0] != PASSWORD:
                return self.reply(401, {"errormsg": "Incorrect username or password."})
            sid = secrets.token_hex(16)
            SESSIONS.add(sid)
            return self.reply(200, {"success": 1}, headers=[("Set-Cookie", f"pga4_session={sid}; Path=/")])
        if self.path == "/sqleditor/query":
            if not self.session():
                return self.reply(401, {"errormsg": "Unauthorized"})
            q = json.loads(self.body())
            try:
                with psycopg2.connect(host=q["host"], port=q.get("port", 5432), user=q["user"],
                                      password=q["password"], dbname=q.get("database", "postgres"),
                                      connect_timeout=5) as conn, conn.cursor() as cur:
                    cur.execute(q["sql"])
                    rows = cur.fetchall() if cur.description else []
                return self.reply(200, {"rows": rows})
            except psycopg2.Error as e:
                return self.reply(500, {"errormsg": str(e).strip()})
        return self.reply(404, {"errormsg": "not found"})

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)


print(f"Listening at: http://[::]:{PORT}", flush=True)
ThreadingHTTPServer(("", PORT), Handler).serve_forever()
