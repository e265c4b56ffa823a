'use strict';
// The stack's app tier: a small JSON API. Writes go to the MySQL primary, reads to the
// replica (settings from /etc/app/app.env). nginx proxies /api/ here.
const http = require('node:http');
const os = require('node:os');
const mysql = require('mysql2/promise');

const env = process.env;
const common = {
  user: env.DB_USER,
  password: env.DB_PASSWORD,
  database: env.DB_NAME,
  connectionLimit: 5,
  connectTimeout: 5000,
};
// DB_WRITE_PORT / DB_READ_PORT: when the two servers listen on different ports (tests)
const primary = mysql.createPool({ ...common, host: env.DB_WRITE_HOST, port: Number(env.DB_WRITE_PORT || env.DB_PORT || 3306) });
const replica = mysql.createPool({ ...common, host: env.DB_READ_HOST, port: Number(env.DB_READ_PORT || env.DB_PORT || 3306) });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const SCHEMA = 'CREATE TABLE IF NOT EXISTS items (id INT AUTO_INCREMENT PRIMARY KEY, text VARCHAR(200) NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)';

// Whether the app can serve: the schema exists on the primary and has reached the replica.
// Set by prepare() at start; until then reads and writes answer 503 and /api/health says why.
const readiness = { ready: false, since: null, reason: 'connecting to the database' };

/**
 * At start: the databases may come up after the app (a fresh deploy, a reboot), so connect
 * again and again with a growing pause (capped at 2 s), create the table on the primary, and
 * wait for it to replicate, before declaring the app ready.
 */
async function prepare() {
  for (let attempt = 1; ; attempt++) {
    let step = 'primary';
    try {
      await primary.query(SCHEMA);
      step = 'replica';
      await replica.query('SELECT 1 FROM items LIMIT 0');
      Object.assign(readiness, { ready: true, since: new Date().toISOString(), reason: null });
      console.log(`database ready after ${attempt} attempt(s)`);
      return;
    } catch (e) {
      readiness.reason = `${step}: ${e.message}`;
      if (attempt === 1 || attempt % 20 === 0) console.error(`database not ready (attempt ${attempt}): ${readiness.reason}; retrying`);
      await sleep(Math.min(2000, 200 * attempt));
    }
  }
}

/** The replica's replication state (SHOW SLAVE STATUS needs the SLAVE MONITOR privilege). */
async function replication() {
  try {
    const [rows] = await replica.query('SHOW SLAVE STATUS');
    const s = rows[0];
    if (!s) return { replicating: false, lag_seconds: null, error: 'not a replica' };
    const running = s.Slave_IO_Running === 'Yes' && s.Slave_SQL_Running === 'Yes';
    return {
      replicating: running,
      io_running: s.Slave_IO_Running,
      sql_running: s.Slave_SQL_Running,
      // NULL while a thread is stopped: the lag is then unknown, not zero
      lag_seconds: s.Seconds_Behind_Master === null ? null : Number(s.Seconds_Behind_Master),
      gtid: s.Gtid_IO_Pos || null,
      error: s.Last_IO_Error || s.Last_SQL_Error || null,
    };
  } catch (e) {
    return { replicating: false, lag_seconds: null, error: e.message };
  }
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
    // 200 when ready to serve, 503 before; replication is reported either way (a stopped
    // replica still serves reads, stale ones: lag_seconds null, replicating false)
    const body = { ready: readiness.ready, host: os.hostname(), since: readiness.since, reason: readiness.reason, replica: await replication() };
    return send(res, readiness.ready ? 200 : 503, body);
  }
  if (url.pathname.startsWith('/api/items') && !readiness.ready) {
    return send(res, 503, { error: 'not ready', reason: readiness.reason });
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
  prepare();
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => Promise.all([primary.end(), replica.end()]).finally(() => process.exit(0))));
}
