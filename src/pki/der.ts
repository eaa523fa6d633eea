import forge from 'node-forge';

/**
 * Reading parts of a DER certificate whatever its key type: forge's certificateFromPem refuses
 * any certificate whose key is not RSA, and an ECDSA CA must sign too.
 */

type Node = forge.asn1.Asn1;

/** forge's fromDer takes these options at runtime; its type definitions know only `strict`. */
const fromDer = forge.asn1.fromDer as unknown as (bytes: forge.util.ByteStringBuffer | string, options: { decodeBitStrings: boolean }) => Node;

/**
 * DER into forge's ASN.1 nodes, BIT STRINGs left as bytes: forge would otherwise try to read their
 * contents as ASN.1 (an EC point, 0x04 || X || Y, can look like an OCTET STRING) and re-encode them.
 */
export const parseDer = (der: Buffer | string): Node =>
  fromDer(typeof der === 'string' ? der : forge.util.createBuffer(der.toString('binary')), { decodeBitStrings: false });

const children = (node: Node): Node[] => (Array.isArray(node.value) ? node.value : []);

/** The TBSCertificate's fields, version first (always present: we only read v3 certificates). */
function tbsFields(certDer: Buffer): Node[] {
  const certificate = parseDer(certDer);
  const fields = children(children(certificate)[0]!);
  // version [0] is optional (v1); the others keep their places after it.
  return fields[0]?.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC ? fields : [forge.asn1.create(forge.asn1.Class.CONTEXT_SPECIFIC, 0, true, []), ...fields];
}

/** The subject Name as encoded, to be the issuer Name of what this certificate signs (byte for byte, as chain building compares). */
export function subjectName(certDer: Buffer): Node {
  return tbsFields(certDer)[5]!;
}

const KEY_USAGE_OID = '2.5.29.15';
/** keyUsage's keyCertSign bit (RFC 5280 4.2.1.3: bit 5). */
const KEY_CERT_SIGN = 5;

/** True when the certificate's keyUsage extension allows keyCertSign. */
export function mayCertSign(certDer: Buffer): boolean {
  const extensions = tbsFields(certDer).find((field) => field.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && field.type === 3);
  for (const extension of extensions ? children(children(extensions)[0]!) : []) {
    const [id, ...rest] = children(extension);
    if (forge.asn1.derToOid(id!.value as string) !== KEY_USAGE_OID) continue;
    const octets = rest[rest.length - 1]!.value as string;
    const bits = parseDer(octets).value as string;
    // bits[0] counts the unused bits; the flags follow, most significant bit first.
    const byte = bits.charCodeAt(1 + Math.floor(KEY_CERT_SIGN / 8));
    return !Number.isNaN(byte) && (byte & (0x80 >> KEY_CERT_SIGN % 8)) !== 0;
  }
  return false;
}
