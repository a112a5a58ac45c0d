/**
 * Placeholder-shaped text written with HTML character references or percent escapes
 * (`&lt;EMAIL_ADDRESS_1&gt;`, `&#60;…&#62;`, `%3CEMAIL_ADDRESS_1%3E`). A model reads such text
 * decoded (asked to, or of its own accord on a page or a URL), and may write `<EMAIL_ADDRESS_1>`
 * back: were that token minted for another value of the request (a system prompt's address),
 * the caller would get that value restored. So the input's placeholders are looked for in this
 * reading too and reserved, as the JSON-escaped ones are (session.ts, reservePlaceholdersIn).
 *
 * One decoding pass, as the detectors read escapes (`&amp;lt;` and `%253C` stay as written):
 * numeric references of any code point (leading zeros, the `;` optional), the named references
 * for the placeholder's punctuation (`&lt;`, `&gt;` and their capital forms, which HTML also reads
 * without `;`; `&lowbar;`, `&UnderBar;`), and percent escapes of ASCII characters. Reserving
 * more than a model would read costs nothing but a skipped token number; reserving less could
 * restore another value.
 */
import { fold } from './normalize.js';

/** What makes a text worth decoding: a reference or escape that can stand for `<`, `>`, `_` or an ASCII letter or digit. */
const MAY_HOLD = /&(?:#|lt|gt|lowbar|underbar)|%[0-7][0-9a-f]/i;

const REFERENCE = /&(?:#[xX]0*([0-9a-fA-F]{1,6});?|#0*([0-9]{1,7});?|(lt|LT|gt|GT);?|(lowbar|UnderBar);)|%([0-7][0-9a-fA-F])/g;

const NAMED: Readonly<Record<string, string>> = { lt: '<', LT: '<', gt: '>', GT: '>', lowbar: '_', UnderBar: '_' };

/** `text` with its references and escapes decoded (see above), or null when it holds none that matter. */
export function placeholderReading(text: string): string | null {
  if (!MAY_HOLD.test(text)) return null;
  return text.replace(REFERENCE, (whole, hex?: string, dec?: string, angle?: string, bar?: string, pct?: string) => {
    if (angle !== undefined) return NAMED[angle]!;
    if (bar !== undefined) return NAMED[bar]!;
    if (pct !== undefined) return String.fromCharCode(parseInt(pct, 16));
    const cp = hex !== undefined ? parseInt(hex, 16) : Number(dec);
    return cp > 0 && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : whole;
  });
}

/**
 * An angle bracket, `<`, `﹤` or `＜`. Three indexOf, not a character class: every string of every
 * prompt is asked, and a regex scan of a 4 KB system prompt took ~3 µs where these take ~0.1.
 */
function hasAngle(text: string): boolean {
  return text.indexOf('<') >= 0 || text.indexOf('\uFF1C') >= 0 || text.indexOf('\uFE64') >= 0;
}

/**
 * The high surrogate of every Unicode tag character (U+E0000-U+E007F): the tag `<` (U+E003C) is
 * one, invisible, and read as `<` (see foldedReading).
 */
export const TAG_HIGH_SURROGATE = '\uDB40';

/**
 * Placeholder-shaped text written with compatibility characters: fullwidth forms
 * (`＜EMAIL＿ADDRESS＿１＞`, as a CJK input method types them), small forms (`﹤…﹥`), mathematical,
 * circled or superscript letters and digits. A model reads them as the ASCII they fold to, and
 * the detectors read text folded the same way (NFKC, normalize.ts), so the input's placeholders
 * are looked for in that reading too.
 *
 * Folded only when it can hold one: an angle bracket (`<`, `﹤`, `＜`) and a character of the
 * blocks whose characters fold to `<`, `>`, `_`, an ASCII capital or a digit (a superset: a text
 * folded for nothing costs a normalize, never a missed placeholder). Those include characters
 * that fold to several (`Ǆ` to `DŽ`, `Ĳ`, the CJK compatibility block's `㉑` to `21` and `㎅` to
 * `KB`): every code point whose NFKC holds such a character is in the set (checked over all of
 * Unicode by a test).
 */
const FOLDS_TO_PLACEHOLDER_CHAR =
  /[\u00B2\u00B3\u00B9\u00BC-\u00BE\u0132\u013F\u01C4-\u01CC\u01F1-\u01F3\u1D2C-\u1D42\u2070-\u2189\u2460-\u24FF\u2C7D\u3250-\u33FF\uA7F1-\uA7F4\uFE33\uFE34\uFE4D-\uFE4F\uFE64\uFE65\uFF10-\uFF3F]|[\uD833\uD835\uD83C\uD83E][\uDC00-\uDFFF]/;

/** `text` folded by NFKC, or null when it holds no character that could fold into a placeholder. */
export function compatibilityReading(text: string): string | null {
  if (!hasAngle(text) || !FOLDS_TO_PLACEHOLDER_CHAR.test(text)) return null;
  const folded = text.normalize('NFKC');
  return folded === text ? null : folded;
}

/**
 * `text` as the detectors read it (normalize.ts fold), or null when that changes nothing that could
 * make a placeholder. The fold drops what NFKC keeps: zero-width and other format characters, a
 * soft hyphen, variation selectors, a combining mark after a digit (`<EMAIL\u200b_ADDRESS_1>`,
 * `<EMAIL_ADDRESS_1\u0301>`), and reads digits of every script and Unicode tag characters (ASCII
 * smuggling: `<EMAIL_ADDRESS_` + the tag `1` + `>`, or the whole placeholder in tags) as the ASCII
 * they stand for. The detectors find values so written because a model reads them so, and a model
 * that reads a placeholder so may write it back plainly: reserved like the NFKC reading.
 */
export function foldedReading(text: string): string | null {
  if (!hasAngle(text) && text.indexOf(TAG_HIGH_SURROGATE) < 0) return null;
  const folded = fold(text).text;
  return folded === text ? null : folded;
}
