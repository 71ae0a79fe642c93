export function crc32(b: Uint8Array): number;
export function pngChunk(type: string, data: Buffer): Buffer;
