/** Base64 without Node's Buffer (browsers, workers): what the page and the local worker exchange images in. */

/** Bytes of a base64 string; a `data:…;base64,` prefix is accepted. Invalid input throws a TypeError (from atob). */
export function base64ToBytes(text: string): Uint8Array {
  const bin = atob(text.replace(/^data:[\w/+.-]*(;[\w=.-]+)*;base64,/, '').replace(/\s+/g, ''));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let bin = '';
  // String.fromCharCode over chunks: one call per byte is slow, one call for all overflows the stack
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
