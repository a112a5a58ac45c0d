/**
 * CRYPTO: wallet addresses whose checksum is defined — Bitcoin base58check (P2PKH/P2SH, version
 * byte 0x00/0x05), bech32/bech32m (bc1…), and Ethereum (0x + 40 hex; EIP-55 checked when the
 * address is mixed-case, accepted at a lower score when it has no case checksum).
 */
import { createHash } from 'node:crypto';
import { keccak_256 } from '@noble/hashes/sha3';
import type { Detector } from '../types.js';

// Sticky: tried only at anchors (a token starting with 1/3 from the digit scan, "bc1", "0x").
const BASE58 = /(?<![\w])[13][1-9A-HJ-NP-Za-km-z]{25,34}(?![\w])/y;
const BECH32 = /(?<![\w])bc1[02-9ac-hj-np-z]{11,71}(?![\w])/iy;
const ETH = /(?<![\w])0x[0-9a-fA-F]{40}(?![\w])/y;

/** Bitcoin's base58 alphabet (no 0, O, I, l). */
export const B58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const B58_INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < B58_ALPHABET.length; i++) B58_INDEX[B58_ALPHABET.charCodeAt(i)] = i;

export function base58checkValid(s: string): boolean {
  // Decode base58 into bytes (big-endian), then compare the double-SHA256 checksum.
  const bytes: number[] = [0];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let carry = c < 128 ? B58_INDEX[c]! : -1;
    if (carry < 0) return false;
    for (let j = 0; j < bytes.length; j++) {
      carry += bytes[j]! * 58;
      bytes[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (let i = 0; i < s.length && s[i] === '1'; i++) bytes.push(0);
  const raw = Buffer.from(bytes.reverse());
  if (raw.length !== 25) return false;
  if (raw[0] !== 0x00 && raw[0] !== 0x05) return false;
  const payload = raw.subarray(0, 21);
  const sum = createHash('sha256').update(createHash('sha256').update(payload).digest()).digest();
  return sum.subarray(0, 4).equals(raw.subarray(21));
}

/** BIP-173 data characters, index = 5-bit value. */
export const BECH32_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
/** The BIP-173 checksum polymod over 5-bit values (1 for bech32, 0x2bc830a3 for bech32m). */
export function bech32Polymod(values: number[]): number {
  const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i]!;
  }
  return chk >>> 0;
}

export function bech32Valid(addr: string): boolean {
  if (addr !== addr.toLowerCase() && addr !== addr.toUpperCase()) return false;
  const s = addr.toLowerCase();
  const sep = s.lastIndexOf('1');
  if (sep < 1 || s.length - sep - 1 < 6) return false;
  const hrp = s.slice(0, sep);
  const data: number[] = [];
  for (let i = sep + 1; i < s.length; i++) {
    const v = BECH32_CHARSET.indexOf(s[i]!);
    if (v < 0) return false;
    data.push(v);
  }
  const values: number[] = [];
  for (let i = 0; i < hrp.length; i++) values.push(hrp.charCodeAt(i) >> 5);
  values.push(0);
  for (let i = 0; i < hrp.length; i++) values.push(hrp.charCodeAt(i) & 31);
  const pm = bech32Polymod(values.concat(data));
  return pm === 1 || pm === 0x2bc830a3; // bech32 or bech32m
}

export function eip55Valid(addr: string): boolean {
  const hex = addr.slice(2);
  const lower = hex.toLowerCase();
  const hash = Buffer.from(keccak_256(lower)).toString('hex');
  for (let i = 0; i < 40; i++) {
    const c = hex[i]!;
    if (c >= '0' && c <= '9') continue;
    const upper = parseInt(hash[i]!, 16) >= 8;
    if (upper !== (c >= 'A' && c <= 'F')) return false;
  }
  return true;
}

export const cryptoDetector: Detector = {
  name: 'crypto',
  entities: ['CRYPTO'],
  // Base58 addresses start with 1 or 3, bech32 with "bc1", Ethereum with "0x" (all hold a digit),
  // and all are one token of 14 or more characters ("bc1" and 11).
  mayMatch: (t) => t.digits > 0 && t.longestRun >= 14,
  detect(text, ctx, out) {
    let m: RegExpExecArray | null;
    // Base58 addresses start with 1 or 3 and run into letters: digit chunks with a letter after.
    for (const ch of ctx.digitChunks()) {
      if (!ch.letterAfter || ch.plus || ch.groupStarts.length !== 1) continue;
      const at = ch.groupStarts[0]!;
      const c = text.charCodeAt(at);
      if (c !== 49 && c !== 51) continue;
      BASE58.lastIndex = at;
      m = BASE58.exec(text);
      if (m && base58checkValid(m[0])) out.push({ entity: 'CRYPTO', start: m.index, end: m.index + m[0].length, score: 0.95 });
    }
    for (const prefix of ['bc1', 'BC1']) {
      let i = text.indexOf(prefix);
      while (i >= 0) {
        BECH32.lastIndex = i;
        m = BECH32.exec(text);
        if (m && bech32Valid(m[0])) out.push({ entity: 'CRYPTO', start: i, end: i + m[0].length, score: 0.95 });
        i = text.indexOf(prefix, i + 3);
      }
    }
    let x = text.indexOf('0x');
    while (x >= 0) {
      ETH.lastIndex = x;
      m = ETH.exec(text);
      if (m) {
        const hex = m[0].slice(2);
        const mixed = hex !== hex.toLowerCase() && hex !== hex.toUpperCase();
        if (!mixed || eip55Valid(m[0])) out.push({ entity: 'CRYPTO', start: x, end: x + 42, score: mixed ? 0.95 : 0.6 });
      }
      x = text.indexOf('0x', x + 2);
    }
  },
};
