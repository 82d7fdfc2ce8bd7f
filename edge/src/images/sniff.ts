/** The image formats the service accepts, recognised by their magic bytes (never by the declared type). */
export const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];

const startsWith = (bytes: Uint8Array, signature: number[], offset = 0): boolean =>
  bytes.length >= offset + signature.length && signature.every((b, i) => bytes[offset + i] === b);

const ascii = (text: string): number[] => [...text].map((ch) => ch.charCodeAt(0));

export function sniffImageType(bytes: Uint8Array): ImageType | null {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return "image/jpeg";
  if (startsWith(bytes, ascii("GIF87a")) || startsWith(bytes, ascii("GIF89a"))) return "image/gif";
  if (startsWith(bytes, ascii("RIFF")) && startsWith(bytes, ascii("WEBP"), 8)) return "image/webp";
  return null;
}

/** A declared media type (`image/jpg` is a common alias) → one of ours, or null. */
export function acceptedMediaType(declared: string): ImageType | null {
  const type = declared.split(";")[0]?.trim().toLowerCase() ?? "";
  const normalised = type === "image/jpg" ? "image/jpeg" : type;
  return (IMAGE_TYPES as readonly string[]).includes(normalised) ? (normalised as ImageType) : null;
}
