// The 15-line raw proxy bench:gateway compares against: node:http in front of an undici Pool.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const pool = new Pool(process.env.UPSTREAM_URL, { connections: 256 });
const server = createServer(async (req, res) => {
  try {
    const up = await pool.request({ path: req.url, method: req.method, headers: { 'content-type': 'application/json' }, body: req });
    res.writeHead(up.statusCode, { 'content-type': up.headers['content-type'] });
    for await (const chunk of up.body) res.write(chunk);
    res.end();
  } catch {
    res.writeHead(502).end();
  }
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`));
