/**
 * Whether a URL host may be fetched by the edge: refuses loopback, private,
 * link-local, shared, reserved and cloud-metadata addresses, in every spelling an
 * IP can take (dotted, decimal, hex, octal, shortened, IPv6 incl. IPv4-mapped),
 * and local-only names. Names that resolve to private addresses are not caught
 * here: Workers' outbound fetch cannot reach private networks in production.
 */

// [network, prefix length] for IPv4 ranges that are not public unicast.
const BLOCKED_V4: [number, number][] = [
  [0x00000000, 8], // "this" network, 0.0.0.0
  [0x0a000000, 8], // 10/8 private
  [0x64400000, 10], // 100.64/10 shared (CGNAT; Alibaba metadata 100.100.100.200)
  [0x7f000000, 8], // loopback
  [0xa9fe0000, 16], // 169.254/16 link-local (AWS/GCP/Azure metadata 169.254.169.254)
  [0xac100000, 12], // 172.16/12 private
  [0xc0000000, 24], // 192.0.0/24 IETF (Oracle metadata 192.0.0.192)
  [0xc0000200, 24], // TEST-NET-1
  [0xc0586300, 24], // 6to4 relay anycast
  [0xc0a80000, 16], // 192.168/16 private
  [0xc6120000, 15], // 198.18/15 benchmarking
  [0xc6336400, 24], // TEST-NET-2
  [0xcb007100, 24], // TEST-NET-3
  [0xe0000000, 4], // multicast
  [0xf0000000, 4], // reserved, broadcast
];

const LOCAL_SUFFIXES = [".localhost", ".local", ".internal", ".intranet", ".home.arpa", ".lan", ".corp"];

export function isPublicHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host.startsWith("[")) return isPublicIpv6(host.slice(1, -1));
  const v4 = parseIpv4(host);
  if (v4 !== null) return isPublicIpv4(v4);
  if (host === "localhost" || LOCAL_SUFFIXES.some((s) => host.endsWith(s))) return false;
  // A public name has a dot and a non-numeric top-level label.
  const labels = host.split(".");
  return labels.length >= 2 && /[a-z]/.test(labels[labels.length - 1] ?? "");
}

export function isPublicIpv4(address: number): boolean {
  return !BLOCKED_V4.some(([network, bits]) => (address & mask(bits)) >>> 0 === network);
}

const mask = (bits: number): number => (bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);

/**
 * IPv4 in any form `inet_aton` accepts (1-4 parts, each decimal, 0x-hex or 0-octal,
 * the last filling the remaining bytes), as an unsigned 32-bit number; null otherwise.
 */
export function parseIpv4(host: string): number | null {
  const parts = host.split(".");
  if (parts.length > 4 || parts.some((p) => p === "")) return null;
  const values: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : Number.parseInt(part.slice(2), 16);
    else if (/^0[0-7]+$/.test(part)) value = Number.parseInt(part, 8);
    else if (/^(0|[1-9][0-9]*)$/.test(part)) value = Number(part);
    else return null;
    values.push(value);
  }
  const last = values.pop() as number;
  if (values.some((v) => v > 255) || last >= 256 ** (4 - values.length)) return null;
  return (values.reduce((acc, v, i) => acc + v * 256 ** (3 - i), 0) + last) >>> 0;
}

/** The eight 16-bit groups of an IPv6 address (with an optional trailing dotted IPv4), or null. */
export function parseIpv6(text: string): number[] | null {
  if (text.includes("%")) return null; // zone ids name local interfaces
  let address = text.toLowerCase();
  const lastColon = address.lastIndexOf(":");
  if (address.slice(lastColon + 1).includes(".")) {
    // A trailing dotted IPv4 (::ffff:127.0.0.1) becomes two hex groups.
    const v4 = /^\d+\.\d+\.\d+\.\d+$/.test(address.slice(lastColon + 1))
      ? parseIpv4(address.slice(lastColon + 1))
      : null;
    if (v4 === null) return null;
    address = `${address.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = address.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (s: string | undefined): number[] | null => {
    if (!s) return [];
    const groups = s.split(":");
    return groups.every((g) => /^[0-9a-f]{1,4}$/.test(g)) ? groups.map((g) => Number.parseInt(g, 16)) : null;
  };
  const head = groupsOf(halves[0]);
  const tail = groupsOf(halves[1]);
  if (!head || !tail) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const missing = 8 - head.length - tail.length;
  return missing >= 1 ? [...head, ...new Array<number>(missing).fill(0), ...tail] : null;
}

/** Only global unicast (2000::/3) less documentation, 6to4, Teredo and ORCHID ranges; embedded IPv4 is judged as IPv4. */
export function isPublicIpv6(text: string): boolean {
  const g = parseIpv6(text);
  if (!g) return false;
  const [a = 0, b = 0] = g;
  const embeddedV4 = (((g[6] ?? 0) << 16) | (g[7] ?? 0)) >>> 0;
  const isMapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
  if (isMapped) return isPublicIpv4(embeddedV4);
  if ((a & 0xe000) !== 0x2000) return false; // ::, ::1, ::/96, 64:ff9b::/96 (NAT64), fc00::/7, fe80::/10, ff00::/8 ...
  if (a === 0x2001 && (b === 0x0db8 || b === 0 || (b & 0xfff0) === 0x0010)) return false;
  if (a === 0x2002) return false; // 6to4 carries an IPv4 address of any kind
  return true;
}
