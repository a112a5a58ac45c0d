/**
 * Phone number validity from libphonenumber's own metadata (`max`), compiled once.
 *
 * libphonenumber-js re-creates its RegExps on every call (~20-40 µs a validation), which made
 * phone validation most of the redaction time. This module applies the same rule it does —
 * the national significant number matches the region's national number pattern and the pattern
 * of at least one number type (fixed line, mobile, toll free, ...) with a length that type uses —
 * with the patterns compiled once. test/redact/phone-metadata.test.ts cross-checks it against
 * libphonenumber-js on thousands of numbers.
 */
import { Metadata, type CountryCode } from 'libphonenumber-js/max';

const TYPES = ['FIXED_LINE', 'MOBILE', 'TOLL_FREE', 'PREMIUM_RATE', 'PERSONAL_NUMBER', 'VOICEMAIL', 'UAN', 'PAGER', 'VOIP', 'SHARED_COST'] as const;

interface TypeRule {
  re: RegExp;
  lengths: readonly number[] | undefined;
}

export interface CompiledRegion {
  region: string;
  callingCode: string;
  general: RegExp;
  lengths: readonly number[];
  /** National prefix for parsing, anchored; with its transform rule when the country has one. */
  prefix: RegExp | null;
  transform: string | undefined;
  types: TypeRule[];
}

/** Accessors that exist at run time but are missing from the published typings. */
interface PlanInternals {
  callingCode(): string;
  nationalPrefixForParsing(): string | undefined;
  nationalPrefixTransformRule(): string | undefined;
  nationalNumberPattern(): string;
  possibleLengths(): number[];
  type(t: string): { pattern(): string | undefined; possibleLengths(): number[] | undefined } | undefined;
}

const compiled = new Map<string, CompiledRegion | null>();
const metadata = new Metadata();
const callingCodes = (metadata as unknown as { metadata: { country_calling_codes: Record<string, string[]> } }).metadata.country_calling_codes;

export function compileRegion(region: string): CompiledRegion | null {
  let c = compiled.get(region);
  if (c !== undefined) return c;
  try {
    metadata.selectNumberingPlan(region as CountryCode);
    const np = metadata.numberingPlan as unknown as PlanInternals;
    const types: TypeRule[] = [];
    for (const t of TYPES) {
      const rule = np.type(t);
      const pattern = rule?.pattern();
      if (!rule || !pattern) continue;
      types.push({ re: new RegExp(`^(?:${pattern})$`), lengths: rule.possibleLengths() });
    }
    const forParsing = np.nationalPrefixForParsing();
    c = {
      region,
      callingCode: np.callingCode(),
      general: new RegExp(`^(?:${np.nationalNumberPattern()})$`),
      lengths: np.possibleLengths(),
      prefix: forParsing ? new RegExp(`^(?:${forParsing})`) : null,
      transform: np.nationalPrefixTransformRule() || undefined,
      types,
    };
  } catch {
    c = null;
  }
  compiled.set(region, c);
  return c;
}

function nsnValid(c: CompiledRegion, nsn: string): boolean {
  // A length none of the region's numbers has fails before any pattern runs.
  if (!c.lengths.includes(nsn.length)) return false;
  if (!c.general.test(nsn)) return false;
  for (const t of c.types) {
    if (t.lengths && !t.lengths.includes(nsn.length)) continue;
    if (t.re.test(nsn)) return true;
  }
  return false;
}

/** The national significant number of `digits` dialled in region `c` (national prefix removed). */
function nationalSignificant(c: CompiledRegion, digits: string): string {
  if (c.prefix) {
    const m = c.prefix.exec(digits);
    if (m && m[0].length > 0) {
      const nsn = c.transform && m.length > 1 && m[1] !== undefined ? digits.replace(c.prefix, c.transform) : digits.slice(m[0].length);
      // libphonenumber keeps the prefix-stripped number only when it is a possible length.
      if (c.lengths.includes(nsn.length)) return nsn;
    }
  }
  return digits;
}

/**
 * The compiled regions of each calling code, made on first use: a validation walks every region
 * of its code (calling code 1 alone is 25), and looking each up by name cost more than testing it.
 */
const regionsByCallingCode = new Map<string, readonly CompiledRegion[]>();

function regionsOf(callingCode: string): readonly CompiledRegion[] {
  let regions = regionsByCallingCode.get(callingCode);
  if (regions === undefined) {
    regions = (callingCodes[callingCode] ?? []).map(compileRegion).filter((c): c is CompiledRegion => c !== null);
    regionsByCallingCode.set(callingCode, regions);
  }
  return regions;
}

/** Valid in any region sharing the calling code (as libphonenumber decides the country). */
function validForCallingCode(callingCode: string, nsn: string): boolean {
  for (const rc of regionsOf(callingCode)) if (nsnValid(rc, nsn)) return true;
  return false;
}

/** Is `digits` (a number as dialled inside the region, national prefix included or not) valid? */
export function validNational(c: CompiledRegion, digits: string): boolean {
  return validForCallingCode(c.callingCode, nationalSignificant(c, digits));
}

/**
 * Is `digits` valid as dialled inside any of `plans` (validNational for each)? Plans that share a
 * calling code and read the same national number (US and CA, both +1, without a trunk prefix)
 * are one test: a number valid in neither was tried twice against all 25 regions of +1.
 */
export function validNationalInAny(plans: readonly CompiledRegion[], digits: string): boolean {
  const tried: string[] = [];
  for (const plan of plans) {
    const nsn = nationalSignificant(plan, digits);
    // The calling code alone stands for "the digits as they are" (a code holds no ':').
    const key = nsn === digits ? plan.callingCode : `${plan.callingCode}:${nsn}`;
    if (tried.includes(key)) continue;
    tried.push(key);
    if (validForCallingCode(plan.callingCode, nsn)) return true;
  }
  return false;
}

/** Is `digits` (everything after the `+`, digits only) a valid international number? */
export function validInternational(digits: string): boolean {
  for (let len = 1; len <= 3 && len < digits.length; len++) {
    const regions = callingCodes[digits.slice(0, len)];
    if (!regions) continue;
    const rest = digits.slice(len);
    // The main region's national prefix rules apply ("+41 (0)44 …" drops the 0).
    const main = compileRegion(regions[0]!);
    return main ? validForCallingCode(main.callingCode, nationalSignificant(main, rest)) : false;
  }
  return false;
}
