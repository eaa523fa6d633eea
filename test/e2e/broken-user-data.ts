import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMap, isSeq, parseDocument } from 'yaml';
import { remintWithoutClientAuth } from './certificates.js';
import type { GeneratedCluster } from './cluster.js';

// The classic mTLS mistake, made on purpose: member certs with serverAuth only, swapped into the generated user-data.
export async function swapInServerOnlyMemberCerts(generated: GeneratedCluster, scratchDir: string): Promise<void> {
  for (const member of generated.memberNames) {
    const originalPem = (await readFile(join(generated.pkiDir, `${member}.crt`), 'utf8')).trim();
    const brokenPem = await readFile(await remintWithoutClientAuth(generated.pkiDir, member, scratchDir), 'utf8');
    const userDataFile = join(generated.userDataDir, `${member}.yaml`);
    const userData = await readFile(userDataFile, 'utf8');
    const document = parseDocument(userData);
    const writeFiles = document.get('write_files');
    if (!isSeq(writeFiles)) throw new Error(`${userDataFile}: no write_files list`);
    let swapped = 0;
    for (const entry of writeFiles.items) {
      if (!isMap(entry)) continue;
      const encoding = String(entry.get('encoding') ?? '');
      const content = String(entry.get('content') ?? '');
      const base64 = encoding === 'b64' || encoding === 'base64';
      const pem = base64 ? Buffer.from(content, 'base64').toString('utf8') : content;
      if (pem.trim() !== originalPem) continue;
      entry.set('content', base64 ? Buffer.from(brokenPem).toString('base64') : brokenPem);
      swapped += 1;
    }
    if (swapped !== 1) throw new Error(`${userDataFile}: expected the member certificate once in write_files, found it ${swapped} times`);
    // lineWidth 0: no refolding, so the only change is the certificate.
    const rendered = document.toString({ lineWidth: 0 });
    if (!rendered.startsWith('#cloud-config')) throw new Error(`${userDataFile}: lost its #cloud-config header`);
    await writeFile(userDataFile, rendered);
  }
}
