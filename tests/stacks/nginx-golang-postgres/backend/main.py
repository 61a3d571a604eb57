"""Counts visits in PostgreSQL (host db, user postgres, database example,
password from the db-password secret); GET / answers "Visits: N"."""
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2


def connect():
    with open("/run/secrets/db-password") as f:
        password = f.read().strip()
    return psycopg2.connect(host="db", user="postgres", password=password, dbname="example", connect_timeout=5)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            with connect() as db, db.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS visits (id SERIAL PRIMARY KEY, at TIMESTAMP DEFAULT now())")
                cur.execute("INSERT INTO visits DEFAULT VALUES")
                cur.execute("SELECT COUNT(*) FROM visits")
                (count,) = cur.fetchone()
            body, code = f"Visits: {count}\n", 200
        except psycopg2.Error as e:
            body, code = f"database error: {e}\n", 500
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


print("listening on :8000", flush=True)
ThreadingHTTPServer(("", 8000), Handler).serve_forever()
