// GET / counts a visit in Redis and answers with this host's name.
const express = require('express');
const redis = require('redis');
const os = require('os');

const client = redis.createClient({ url: 'redis://redis:6379' });
client.on('error', (e) => console.error('redis:', e.message));
const app = express();
app.get('/', async (req, res) => {
  try {
    if (!client.isOpen) await client.connect();
    const n = await client.incr('numVisits');
    res.type('text/plain').send(`${os.hostname()}: Total number of visits is: ${n}\n`);
  } catch (e) {
    res.status(500).type('text/plain').send(`redis error: ${e.message}\n`);
  }
});
const server = app.listen(5000, () => console.log('Web application is listening on port 5000'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
