// Serves /code/src on port 3000, index.html for /.
const http = require('http');
const fs = require('fs');
const path = require('path');
const root = path.join(__dirname, 'src');
http.createServer((req, res) => {
  const file = path.join(root, path.normalize(req.url === '/' ? '/index.html' : req.url));
  if (!file.startsWith(root)) { res.writeHead(403); return res.end(); }
  fs.readFile(file, (e, data) => {
    if (e) { res.writeHead(404); return res.end('not found\n'); }
    res.writeHead(200, { 'Content-Type': file.endsWith('.html') ? 'text/html' : 'application/octet-stream' });
    res.end(data);
  });
}).listen(3000, () => console.log('frontend on 3000'));
process.on('SIGTERM', () => process.exit(0));
