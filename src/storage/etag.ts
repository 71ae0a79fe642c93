/**
 * @module storage/etag
 * Validators for produced bytes.
 */

/** A content hash (RFC 9110 8.8.3 strong validator), so identical bytes get the same ETag in every colo and isolate. */
export async function strongEtag(bytes: ArrayBuffer): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let hex = "";
  for (let i = 0; i < 16; i++) hex += digest[i].toString(16).padStart(2, "0");
  return `"${hex}"`;
}
