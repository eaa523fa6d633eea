// Serves the local etcd release mirror; run inside the test's network namespace (plain node, no build).
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';

const [root, address, port] = process.argv.slice(2);
if (!root || !address || !port) throw new Error('usage: mirror-server.mjs <root> <address> <port>');

createServer((request, response) => {
  const path = normalize(decodeURIComponent(new URL(request.url ?? '/', 'http://mirror').pathname));
  const file = join(root, path);
  let size;
  try {
    const info = statSync(file);
    if (!info.isFile() || path.includes('..')) throw new Error('not a file');
    size = info.size;
  } catch {
    response.writeHead(404).end();
    console.log(`${request.socket.remoteAddress} ${request.method} ${path} 404`);
    return;
  }
  // The guests' downloads show in this log: proof the real download path ran.
  console.log(`${request.socket.remoteAddress} ${request.method} ${path} 200 ${size}`);
  response.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
  if (request.method === 'HEAD') response.end();
  else createReadStream(file).pipe(response);
}).listen(Number(port), address, () => console.log(`serving ${root} on http://${address}:${port}`));
