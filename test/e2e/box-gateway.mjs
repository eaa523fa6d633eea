// The DigitalOcean box's doors inside the test's network namespace (plain node, no build). The fake
// API and the metadata service live in the test process; Unix sockets reach across namespaces, TCP
// does not. So this forwards:
//   <apiAddress>:<apiPort>  -> the fake API's socket (raw TCP, as a client's HTTPS proxy would)
//   <metadataAddress>:80    -> the metadata socket, telling it who asked (x-droplet-source), as the
//                              real service knows each droplet by the link it asks from.
//   box-gateway.mjs <apiAddress> <apiPort> <apiSocket> <metadataAddress> <metadataSocket>
import { createServer as createHttpServer, request } from 'node:http';
import { connect, createServer } from 'node:net';

const [apiAddress, apiPort, apiSocket, metadataAddress, metadataSocket] = process.argv.slice(2);
if (!apiAddress || !apiPort || !apiSocket || !metadataAddress || !metadataSocket) {
  throw new Error('usage: box-gateway.mjs <apiAddress> <apiPort> <apiSocket> <metadataAddress> <metadataSocket>');
}

createServer((client) => {
  const upstream = connect(apiSocket);
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
}).listen(Number(apiPort), apiAddress, () => console.log(`API on http://${apiAddress}:${apiPort}`));

createHttpServer((incoming, answer) => {
  const source = incoming.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
  const upstream = request({ socketPath: metadataSocket, path: incoming.url, method: incoming.method, headers: { 'x-droplet-source': source } }, (response) => {
    console.log(`${source} ${incoming.method} ${incoming.url} ${response.statusCode}`);
    answer.writeHead(response.statusCode ?? 502, response.headers);
    response.pipe(answer);
  });
  upstream.on('error', (error) => answer.writeHead(502).end(String(error)));
  upstream.end();
}).listen(80, metadataAddress, () => console.log(`metadata on http://${metadataAddress}`));
