function octets(address: string): number[] {
  return address.split('.').map(Number);
}

/** Not 0.0.0.0/8, multicast, reserved or broadcast: an address a host can listen on and others can reach. */
export function isUnicastIPv4(address: string): boolean {
  const [first = 0] = octets(address);
  return first !== 0 && first < 224;
}

/** RFC 1918, loopback, link-local or CGNAT (RFC 6598): not reachable from the internet. */
export function isPrivateOrLoopback(address: string): boolean {
  const [a = 0, b = 0] = octets(address);
  return (
    a === 10 ||
    a === 127 ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 169 && b === 254) ||
    (a === 100 && b >= 64 && b <= 127)
  );
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.');
}

/** The address as a 32-bit unsigned number, for range arithmetic. */
export function ipv4ToNumber(address: string): number {
  return octets(address).reduce((value, octet) => value * 256 + octet, 0);
}

export function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}
