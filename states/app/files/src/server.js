'use strict';
// The stack's app tier: a small JSON API. Writes go to the MySQL primary, reads to the
// replica (settings from /etc/app/app.env). nginx proxies /api/ here.
const http = require('node:http');
const os = require('node:os');
const mysql = require('mysql2/promise');

const env = process.env;
const common = {
  port: Number(env.DB_PORT || 3306),
  user: env.DB_USER,
  password: env.DB_PASSWORD,
  database: env.DB_NAME,
  connectionLimit: 5,
  connectTimeout: 5000,
};
const primary = mysql.createPool({ ...common, host: env.DB_WRITE_HOST });
const replica = mysql.createPool({ ...common, host: env.DB_READ_HOST });

let schemaReady = null;
// created on the primary; replication brings the table to the replica
function ensureSchema() {
  schemaReady ??= primary
    .query('CREATE TABLE IF NOT EXISTS items (id INT AUTO_INCREMENT PRIMARY KEY, text VARCHAR(200) NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)')
    .catch((e) => {
      schemaReady = null; // retry on the next request
      throw e;
    });
  return schemaReady;
}

function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

function readBody(req, limit = 16 * 1024) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) reject(Object.assign(new Error('body too large'), { status: 413 }));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/api/health') {
    return send(res, 200, { ok: true, host: os.hostname() });
  }
  if (url.pathname === '/api/items' && req.method === 'GET') {
    const [rows] = await replica.query('SELECT id, text, created_at FROM items ORDER BY id DESC LIMIT 50');
    return send(res, 200, { host: os.hostname(), source: 'replica', items: rows });
  }
  if (url.pathname === '/api/items' && req.method === 'POST') {
    let text;
    try {
      text = JSON.parse(await readBody(req)).text;
    } catch (e) {
      return send(res, e.status || 400, { error: e.status ? e.message : 'body must be JSON: {"text": "..."}' });
    }
    if (typeof text !== 'string' || text.length === 0 || text.length > 200) {
      return send(res, 400, { error: 'text must be a string of 1..200 characters' });
    }
    await ensureSchema();
    const [r] = await primary.execute('INSERT INTO items (text) VALUES (?)', [text]);
    return send(res, 201, { host: os.hostname(), source: 'primary', id: r.insertId });
  }
  return send(res, 404, { error: 'not found' });
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    console.error(`${req.method} ${req.url}: ${e.message}`);
    if (!res.headersSent) send(res, 503, { error: 'database unavailable' });
  });
});

server.listen(Number(env.PORT || 3000), () => {
  console.log(`app listening on ${server.address().port}`);
  ensureSchema().catch((e) => console.error(`schema: ${e.message} (retried on first write)`));
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => Promise.all([primary.end(), replica.end()]).finally(() => process.exit(0))));
}
