/** The two hex digits of every byte value, built once: three hashes per request are written out as hex. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
const encoder = new TextEncoder();

export const toHex = (bytes: Uint8Array): string => {
  let hex = "";
  for (const b of bytes) hex += HEX[b];
  return hex;
};

export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}
