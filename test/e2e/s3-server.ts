// The test's S3-compatible bucket (s3rver behind the signature-v4 front), run inside the test's
// network namespace so the guests reach it on the bridge: node --import tsx s3-server.ts <dir> <address> <port> <bucket>
import { startCheckedS3 } from '../support/s3-sigv4.js';

const [directory, host, port, bucket] = process.argv.slice(2);
if (!directory || !host || !port || !bucket) throw new Error('usage: s3-server.ts <dir> <address> <port> <bucket>');
const s3 = await startCheckedS3(directory, [bucket], { host, port: Number(port), log: (line) => console.log(line) });
console.log(`serving bucket ${bucket} on ${s3.url} (key pair ${s3.accessKeyId}/…)`);
process.once('SIGTERM', () => void s3.close().then(() => process.exit(0)));
