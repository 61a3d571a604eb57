// Counts visits in MariaDB: GET / adds a row and answers "Visits: N".
// DATABASE_PASSWORD names the file that holds the password (the secret).
const express = require('express');
const mysql = require('mysql');
const fs = require('fs');

const pool = mysql.createPool({
  host: process.env.DATABASE_HOST,
  user: process.env.DATABASE_USER,
  password: fs.readFileSync(process.env.DATABASE_PASSWORD, 'utf8').trim(),
  database: process.env.DATABASE_DB,
  connectionLimit: 4,
});
const q = (sql, args) => new Promise((ok, no) => pool.query(sql, args, (e, r) => (e ? no(e) : ok(r))));

const app = express();
app.get('/', async (req, res) => {
  try {
    await q('CREATE TABLE IF NOT EXISTS visits (id INT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)');
    await q('INSERT INTO visits () VALUES ()');
    const rows = await q('SELECT COUNT(*) AS n FROM visits');
    res.type('text/plain').send(`Visits: ${rows[0].n}\n`);
  } catch (e) {
    res.status(500).type('text/plain').send(`database error: ${e.message}\n`);
  }
});
app.get('/healthz', (req, res) => res.send('ok\n'));
const server = app.listen(80, () => console.log('backend listening on 80'));
process.on('SIGTERM', () => server.close(() => { pool.end(); process.exit(0); }));
