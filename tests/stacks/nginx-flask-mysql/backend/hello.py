"""Counts visits in MariaDB: each GET / adds a row and answers with the
number of rows, so a second request sees the first and the count survives
the container (the database lives in the sample's named volume)."""
import socket

import pymysql
from flask import Flask

app = Flask(__name__)


def connect():
    with open("/run/secrets/db-password") as f:
        password = f.read().strip()
    return pymysql.connect(host="db", user="root", password=password, database="example")


@app.route("/")
def visits():
    db = connect()
    with db.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS visits (id INT AUTO_INCREMENT PRIMARY KEY, host VARCHAR(64))")
        cur.execute("INSERT INTO visits (host) VALUES (%s)", (socket.gethostname(),))
        cur.execute("SELECT COUNT(*) FROM visits")
        (count,) = cur.fetchone()
    db.commit()
    db.close()
    return f"Visits: {count}\n"
