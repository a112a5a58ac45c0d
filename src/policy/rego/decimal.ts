/**
 * Exact decimals for the rare number literal a double cannot tell apart from its neighbours:
 * `0.1234567890123456789` (more digits than a double holds) or `1e-400` (underflows to 0).
 * OPA compares such numbers exactly; Warden keeps everything else a plain JS `number` (or
 * `bigint` for big integers) so that the hot path never pays for this.
 *
 * A literal becomes a RegoDecimal only when its text does not round-trip through a double
 * (`String(Number(text))` denotes another number). Such a decimal therefore never equals any
 * double, and doubles that do round-trip order exactly like the decimals they print as. Only
 * comparison (`==`, `<`, sets, object keys, sort order) looks at the exact digits; built-ins
 * and arithmetic receive the nearest double (topdown converts at the call boundary, and only
 * in policies that contain such a literal).
 *
 * Fields are private (#) on purpose: code that does not know this class sees an object with
 * no own keys, so a stray lookup or iteration finds nothing rather than internals.
 */

interface Parts {
  neg: boolean;
  /** Coefficient without trailing zeros (0n for zero). */
  coef: bigint;
  exp: number;
}

const NUMBER_TEXT = /^(-)?([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/;

function partsOf(text: string): Parts | undefined {
  const m = NUMBER_TEXT.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const frac = m[3] ?? '';
  let digits = ((m[2] ?? '') + frac).replace(/^0+/, '');
  let exp = (m[4] === undefined ? 0 : Number(m[4])) - frac.length;
  if (digits === '') return { neg: false, coef: 0n, exp: 0 };
  let end = digits.length;
  while (end > 1 && digits.charCodeAt(end - 1) === 48) end--;
  exp += digits.length - end;
  digits = digits.slice(0, end);
  return { neg: m[1] === '-', coef: BigInt(digits), exp };
}

function numberParts(x: number | bigint): Parts {
  if (typeof x === 'bigint') return partsOf(x.toString())!;
  return partsOf(Object.is(x, -0) ? '0' : String(x))!;
}

function digitCount(c: bigint): number {
  return c.toString().length;
}

function compareParts(a: Parts, b: Parts): number {
  const sa = a.coef === 0n ? 0 : a.neg ? -1 : 1;
  const sb = b.coef === 0n ? 0 : b.neg ? -1 : 1;
  if (sa !== sb) return sa < sb ? -1 : 1;
  if (sa === 0) return 0;
  // Same sign: compare magnitudes, by decimal exponent of the leading digit first.
  const adjA = a.exp + digitCount(a.coef);
  const adjB = b.exp + digitCount(b.coef);
  let m: number;
  if (adjA !== adjB) m = adjA < adjB ? -1 : 1;
  else {
    // Same leading exponent: the exponents differ by at most the digit counts.
    let ca = a.coef;
    let cb = b.coef;
    if (a.exp > b.exp) ca *= 10n ** BigInt(a.exp - b.exp);
    else if (b.exp > a.exp) cb *= 10n ** BigInt(b.exp - a.exp);
    m = ca < cb ? -1 : ca > cb ? 1 : 0;
  }
  return sa * m;
}

export class RegoDecimal {
  readonly #num: number;
  readonly #parts: Parts;
  readonly #text: string;
  readonly #key: string;

  private constructor(num: number, parts: Parts, text: string) {
    this.#num = num;
    this.#parts = parts;
    this.#text = text;
    this.#key = `${parts.neg ? '-' : ''}${parts.coef}e${parts.exp}`;
  }

  /**
   * The exact value of a number literal's text (`-0.1234567890123456789`), or undefined when
   * the nearest double already denotes it (then use that double).
   */
  static fromLiteral(text: string): RegoDecimal | undefined {
    const parts = partsOf(text);
    if (parts === undefined) return undefined;
    const num = Number(text);
    if (!Number.isFinite(num)) return undefined;
    if (compareParts(parts, numberParts(num)) === 0) return undefined;
    const json = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(text);
    return new RegoDecimal(num, parts, json ? text : `${parts.neg ? '-' : ''}${parts.coef}e${parts.exp}`);
  }

  /** The nearest double (what built-ins and arithmetic compute with). */
  get num(): number {
    return this.#num;
  }

  /** Canonical text, equal for equal decimals (for keyOf). */
  get key(): string {
    return this.#key;
  }

  /** Number text as written in the policy (JSON number syntax), for output. */
  toString(): string {
    return this.#text;
  }

  /** Exact comparison with a number, a big integer or another decimal. */
  compareTo(x: number | bigint | RegoDecimal): number {
    return compareParts(this.#parts, x instanceof RegoDecimal ? x.#parts : numberParts(x));
  }
}
