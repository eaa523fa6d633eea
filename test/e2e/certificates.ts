import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.js';

// Test-only certificates made with the openssl CLI, independent of the product's own PKI code.

export interface ClientIdentity {
  cacert: string;
  cert?: string;
  key?: string;
}

async function signLeaf(dir: string, name: string, caCert: string, caKey: string, extensions: string, key?: string): Promise<string> {
  const keyFile = key ?? join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  const cert = join(dir, `${name}.crt`);
  if (key === undefined) await run(['openssl', 'genrsa', '-out', keyFile, '2048']);
  await run(['openssl', 'req', '-new', '-key', keyFile, '-subj', `/CN=${name}`, '-out', csr]);
  await writeFile(extFile, extensions);
  await run(['openssl', 'x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-extfile', extFile, '-out', cert]);
  await rm(csr);
  await rm(extFile);
  return cert;
}

// A well-formed client certificate from a CA the cluster has never seen (pair it with the cluster's CA to verify the server).
export async function mintForeignClient(dir: string): Promise<{ cert: string; key: string }> {
  await mkdir(dir, { recursive: true });
  const caCert = join(dir, 'foreign-ca.crt');
  const caKey = join(dir, 'foreign-ca.key');
  await run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '2', '-subj', '/CN=foreign-ca']);
  const cert = await signLeaf(dir, 'foreign-client', caCert, caKey, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  return { cert, key: join(dir, 'foreign-client.key') };
}

// The broken-on-purpose member cert: same key, CA and SANs as the generated one, but serverAuth only.
export async function remintWithoutClientAuth(pkiDir: string, member: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const original = new X509Certificate(await readFile(join(pkiDir, `${member}.crt`)));
  const subjectAltName = (original.subjectAltName ?? '').replaceAll('IP Address:', 'IP:');
  const extensions = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    ...(subjectAltName === '' ? [] : [`subjectAltName=${subjectAltName}`]),
    '',
  ].join('\n');
  return signLeaf(dir, member, join(pkiDir, 'ca.crt'), join(pkiDir, 'ca.key'), extensions, join(pkiDir, `${member}.key`));
}
