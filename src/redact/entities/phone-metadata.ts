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
 * The rules a national significant number of one length must pass to be valid somewhere in a
 * calling code: one per region of the code whose numbers have that length, holding only its
 * number types that have it too (a type without lengths of its own holds every length).
 */
interface LengthRule {
  general: RegExp;
  types: readonly RegExp[];
}

/** The longest national significant number any region has (libphonenumber: 17). */
const MAX_NSN = 17;

/**
 * The LengthRules of each calling code by length, made on first use. A validation used to walk
 * every region of the code and ask each whether it has the length (calling code 1 alone is 25
 * regions, and most are 10 digits only): in a table of numbers, where nearly every window of 7 to
 * 15 digits is validated in every default region, those walks were most of the validation time.
 */
const rulesByCallingCode = new Map<string, ReadonlyArray<readonly LengthRule[]>>();

function rulesOf(callingCode: string): ReadonlyArray<readonly LengthRule[]> {
  let rules = rulesByCallingCode.get(callingCode);
  if (rules === undefined) {
    const byLength: LengthRule[][] = Array.from({ length: MAX_NSN + 1 }, () => []);
    for (const name of callingCodes[callingCode] ?? []) {
      const c = compileRegion(name);
      if (c === null) continue;
      for (const len of c.lengths) {
        if (len > MAX_NSN) continue;
        const types = c.types.filter((t) => !t.lengths || t.lengths.includes(len)).map((t) => t.re);
        if (types.length > 0) byLength[len]!.push({ general: c.general, types });
      }
    }
    rules = byLength;
    rulesByCallingCode.set(callingCode, rules);
  }
  return rules;
}

/**
 * Valid in any region sharing the calling code (as libphonenumber decides the country): the
 * national number matches a region's national number pattern and the pattern of one of its
 * number types with a length that type uses.
 */
function validForCallingCode(callingCode: string, nsn: string): boolean {
  return validIn(rulesOf(callingCode), nsn);
}

/** Valid by one of a calling code's rules (rulesOf). */
function validIn(byLength: ReadonlyArray<readonly LengthRule[]>, nsn: string): boolean {
  const rules = byLength[nsn.length];
  if (rules === undefined) return false;
  for (const r of rules) {
    if (!r.general.test(nsn)) continue;
    for (const t of r.types) if (t.test(nsn)) return true;
  }
  return false;
}

/** Is `digits` (a number as dialled inside the region, national prefix included or not) valid? */
export function validNational(c: CompiledRegion, digits: string): boolean {
  return validForCallingCode(c.callingCode, nationalSignificant(c, digits));
}

const planLists = new WeakMap<readonly string[], readonly CompiledRegion[]>();

/**
 * The compiled plans of `regions` (unknown regions left out), one array per regions array: a
 * scanner's regions are one array for its life, so what validNationalInAny works out for a list
 * of plans (dialling) is worked out once, not for every scan.
 */
export function plansFor(regions: readonly string[]): readonly CompiledRegion[] {
  let plans = planLists.get(regions);
  if (plans === undefined) {
    plans = regions.map(compileRegion).filter((c): c is CompiledRegion => c !== null);
    planLists.set(regions, plans);
  }
  return plans;
}

/**
 * How a list of plans dials a number, worked out once per list (see dialling): plans that read
 * every number alike are one entry, and each entry holds what a validation reads of it.
 */
interface Dialling {
  entries: DialEntry[];
  /** The entries in the order they are asked: the last one that validated a number first. */
  order: number[];
}

interface DialEntry {
  plan: CompiledRegion;
  /** The calling code's rules by length (rulesOf), looked up once. */
  rules: ReadonlyArray<readonly LengthRule[]>;
  /** The national prefix when it is a plain digit string and has no transform ("0"): no RegExp run. */
  literal: string | null;
  /** Other entries of the same calling code: a number may read the same in two of them. */
  peers: number[];
}

const diallings = new WeakMap<readonly CompiledRegion[], Dialling>();

function dialling(plans: readonly CompiledRegion[]): Dialling {
  let d = diallings.get(plans);
  if (d !== undefined) return d;
  const entries: DialEntry[] = [];
  const keys: string[] = [];
  for (const plan of plans) {
    // Same calling code, prefix rule and lengths: the same national number, so the same answer.
    const key = `${plan.callingCode}|${plan.prefix?.source ?? ''}|${plan.transform ?? ''}|${plan.lengths.join(',')}`;
    if (keys.includes(key)) continue;
    keys.push(key);
    const source = plan.prefix?.source;
    const plain = source === undefined ? null : /^\^\(\?:(\d+)\)$/.exec(source);
    entries.push({ plan, rules: rulesOf(plan.callingCode), literal: plain && plan.transform === undefined ? plain[1]! : null, peers: [] });
  }
  for (let i = 0; i < entries.length; i++) {
    for (let j = 0; j < entries.length; j++) if (j !== i && entries[j]!.plan.callingCode === entries[i]!.plan.callingCode) entries[i]!.peers.push(j);
  }
  d = { entries, order: entries.map((_, i) => i) };
  diallings.set(plans, d);
  return d;
}

/** The national significant number of `digits` dialled in entry `e` (nationalSignificant, a plain prefix compared in place). */
function entryNational(e: DialEntry, digits: string): string {
  if (e.literal === null) return nationalSignificant(e.plan, digits);
  if (!digits.startsWith(e.literal)) return digits;
  const nsn = digits.slice(e.literal.length);
  return e.plan.lengths.includes(nsn.length) ? nsn : digits;
}

/** Per validation: the national number each entry read (valid while its stamp is the call's). */
let dialStamp = 0;
let stamps = new Int32Array(0);
let readAs: string[] = [];

/**
 * Is `digits` valid as dialled inside any of `plans` (validNational for each)? Plans that share a
 * calling code and read the same national number (US and CA, both +1, without a trunk prefix)
 * are one test: a number valid in neither was tried twice against all 25 regions of +1. The
 * verdict is whether any plan validates, so the order plans are asked in is free: the one that
 * validated the last number goes first (a table of numbers is mostly valid in one region, and
 * each number was walked through the regions before it).
 */
export function validNationalInAny(plans: readonly CompiledRegion[], digits: string): boolean {
  const d = dialling(plans);
  const { entries, order } = d;
  if (stamps.length < entries.length) {
    stamps = new Int32Array(entries.length);
    readAs = new Array<string>(entries.length).fill('');
  }
  // Stamps are int32: past 2^31 - 1 a stored stamp would never equal the call's again (the peers
  // would no longer be skipped). Starting over with every stamp cleared keeps them exact.
  if (dialStamp === 0x7fffffff) {
    stamps.fill(0);
    dialStamp = 0;
  }
  const stamp = ++dialStamp;
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    const e = entries[i]!;
    const nsn = entryNational(e, digits);
    let seen = false;
    for (const j of e.peers) if (stamps[j] === stamp && readAs[j] === nsn) seen = true;
    if (seen) continue;
    stamps[i] = stamp;
    readAs[i] = nsn;
    if (validIn(e.rules, nsn)) {
      if (k > 0) {
        order.splice(k, 1);
        order.unshift(i);
      }
      return true;
    }
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
