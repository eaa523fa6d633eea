// A stand-in for DigitalOcean's metadata service on 169.254.169.254, inside the test's network
// namespace (plain node, no build). Like the real one, it answers each droplet about itself: the
// caller is known by its (link-local) source address.
//   metadata-server.mjs <address> <port> <source=privateIPv4>,...
import { createServer } from 'node:http';

const [address, port, table] = process.argv.slice(2);
if (!address || !port || !table) throw new Error('usage: metadata-server.mjs <address> <port> <source=privateIPv4>,...');
const privateIpv4 = new Map(table.split(',').map((pair) => pair.split('=')));

createServer((request, response) => {
  const source = request.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
  const answer = request.url === '/metadata/v1/interfaces/private/0/ipv4/address' ? privateIpv4.get(source) : undefined;
  // The guests' questions show in this log: proof that listen-address.sh asked.
  console.log(`${source} ${request.method} ${request.url} ${answer === undefined ? 404 : `200 ${answer}`}`);
  if (answer === undefined) response.writeHead(404).end('not found\n');
  else response.writeHead(200, { 'content-type': 'text/plain' }).end(answer);
}).listen(Number(port), address, () => console.log(`metadata service on http://${address}:${port}`));
