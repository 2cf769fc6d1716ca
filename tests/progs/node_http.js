// Node's http server and client on the loopback in one process (GET, a 200 kB POST), and a
// refused connection: compared with a native run.
const http = require('http');
const net = require('net');
const srv = http.createServer((req, res) => {
  let body = '';
  req.on('data', d => body += d);
  req.on('end', () => { res.setHeader('Content-Type', 'text/plain'); res.end(`${req.method} ${req.url} ${body.length}`); });
});
srv.listen(0, '127.0.0.1', async () => {
  const port = srv.address().port;
  for (const [method, body] of [['GET', ''], ['POST', 'x'.repeat(200000)]]) {
    await new Promise((resolve) => {
      const req = http.request({ port, host: '127.0.0.1', method, path: '/p?q=1' }, res => {
        let d = '';
        res.on('data', c => d += c);
        res.on('end', () => { console.log(res.statusCode, res.headers['content-type'], d); resolve(); });
      });
      req.end(body);
    });
  }
  const s = net.connect(1, '127.0.0.1');
  s.on('error', e => { console.log('refused:', e.code); srv.close(() => console.log('closed')); });
});
