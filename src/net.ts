/**
 * @module net
 * Which hosts the worker never fetches from on a client's say-so: job callbacks (notify_url) and
 * the pull-through origin (ORIGIN_URL) are refused on them unless configured otherwise. A leaf,
 * so config.ts can check ORIGIN_URL without importing a stage of the request.
 */

/**
 * Whether a callback host points inside a network rather than at an origin on the internet. The
 * WHATWG URL parser has already turned `2130706433`, `0x7f.1` and `[::ffff:127.0.0.1]` into
 * their canonical forms. IPv4: 0/8, 10/8, 100.64/10 (RFC 6598), 127/8, 169.254/16 (link-local,
 * cloud metadata), 172.16/12, 192.168/16, 198.18/15, 224/4 and above (RFC 6890). IPv6: ::, ::1,
 * fc00::/7, fe80::/10, and IPv4-mapped forms of the above. Names: localhost, and the .internal,
 * .local, .localhost suffixes metadata services and LANs use.
 */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 0 || a === 10 || a === 127 || a >= 224 || (a === 100 && b >= 64 && b < 128) || (a === 169 && b === 254) || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 198 && (b === 18 || b === 19));
  }
  if (host.startsWith("[")) {
    const v6 = host.slice(1, -1);
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6);
    if (mapped) return isPrivateHost(mapped[1]);
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
    if (hex) {
      const hi = parseInt(hex[1], 16);
      const lo = parseInt(hex[2], 16);
      return isPrivateHost(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
    }
    return v6 === "::" || v6 === "::1" || /^f[cd][0-9a-f]{0,2}:/.test(v6) || /^fe[89ab][0-9a-f]?:/.test(v6);
  }
  return host === "localhost" || /\.(localhost|local|internal)$/.test(host) || !host.includes(".");
}
