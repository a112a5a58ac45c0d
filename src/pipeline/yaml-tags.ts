/**
 * YAML tags Warden accepts: the YAML 1.2 core ones (`!!str`, `!!int`, `!!float`, `!!bool`,
 * `!!null`, `!!map`, `!!seq`) and the non-specific `!`. The `yaml` library drops any other tag
 * with only a warning and keeps the plain value, so `api_key: !vault secret/x` would read as the
 * string `secret/x`: an operator who thinks a tag does something must be told it does not.
 * YAML 1.1's types (`!!binary`, `!!set`, `!!timestamp`, …) are refused too: the library would
 * otherwise hand back a Buffer, a Set or a Date where Warden expects plain data, and a `%YAML 1.1`
 * document (whose plain dates and yes/no resolve with no tag at all) is refused. Every YAML text
 * Warden reads as its own input (config, templates, policy data, `warden policy` input) is
 * checked; `yaml.unmarshal` in Rego is not, as OPA's YAML library ignores unknown tags.
 */
import { LineCounter, parseDocument, type Document } from 'yaml';
import { isQuotableName, unquotedReason } from './secret-literals.js';
import { addDuplicateKeyErrors, NO_LIBRARY_UNIQUE_KEYS } from './yaml-unique-keys.js';
import { yamlKeyProblems } from './yaml-keys.js';

/**
 * Parse options for every such text: explicit YAML 1.1 tags stay unresolved (so they are
 * reported like any unknown tag) instead of being turned into Buffers, Sets and Dates. The
 * library's process warnings are off: they quote the text (a key it stringifies, which may be a
 * pasted secret) on stderr, and what they warn of is refused with a position anyway
 * (pipeline/yaml-keys.ts).
 */
export const YAML_TAG_OPTIONS = { resolveKnownTags: false, logLevel: 'error' } as const;

const YAML_ORG = 'tag:yaml.org,2002:';
const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => YAML_ORG + t));

export interface YamlTagProblem {
  /** Where the tag (or, under `%YAML 1.1`, the value it tags) begins: an offset into the text. */
  offset: number;
  message: string;
}

/** The problems with a parsed document's tags, in text order (none: every tag is a core one). */
export function yamlTagProblems(doc: Document): YamlTagProblem[] {
  const problems: YamlTagProblem[] = [];
  for (const w of doc.warnings) {
    if (w.code !== 'TAG_RESOLVE_FAILED' && w.code !== 'BAD_COLLECTION_TYPE') continue;
    // Only the first line: with prettyErrors, later lines quote the source, which may hold a secret.
    const first = w.message.split('\n')[0]!;
    const tag = /^Unresolved tag: (\S+)/.exec(first)?.[1];
    const message = tag === undefined ? `YAML: ${first}` : CORE_TAGS.has(tag) ? `YAML tag ${shown(tag)} does not fit its value` : `unknown YAML tag ${described(tag)}`;
    problems.push({ offset: w.pos[0], message });
  }
  // Under a `%YAML 1.1` directive the library reads YAML 1.1: plain dates become Date objects,
  // `yes`/`no` booleans, `010` octal, with no tag to find. Warden's inputs are YAML 1.2.
  if (doc.schema.name !== 'core') {
    problems.push({ offset: 0, message: '%YAML 1.1 is not supported: Warden reads YAML 1.2 (remove the directive)' });
  }
  return problems.sort((a, b) => a.offset - b.offset);
}

/** A tag as it is written: `!!binary`, `!vault`, or a global tag in verbatim form. */
function shown(tag: string): string {
  return tag.startsWith(YAML_ORG) ? `!!${tag.slice(YAML_ORG.length)}` : tag.startsWith('!') ? tag : `!<${tag}>`;
}

/**
 * An unknown tag as a load message may show it: written out when its name is a short identifier
 * no credential pattern matches (`!vault`, `!!binary`), described otherwise. A tag is text from
 * the file like any key (`!AKIA…` is a pasted key id), and these messages reach the CLI, the
 * startup error and the reload log line; the rule is the template loader's for names.
 */
function described(tag: string): string {
  const name = tag.startsWith(YAML_ORG) ? tag.slice(YAML_ORG.length) : tag.startsWith('!') ? tag.slice(1) : tag;
  return isQuotableName(name) ? shown(tag) : `(tag not shown: ${unquotedReason(name)})`;
}

/**
 * The yaml library's messages for a tag it cannot resolve (`!e!x` with no `%TAG` for `!e!`, an
 * unclosed `!<x`, a handle with no suffix) quote the tag; the others in this code do not.
 */
const TAG_QUOTING = /^(?:Could not resolve tag: |Not a valid tag: |Verbatim tags aren't resolved|The .* tag has no suffix)/;

/**
 * The yaml library's messages that quote text from the file besides tags, each with what stands in
 * for the text: the parser's stray-token errors (the composer adds `: "<the token's source>"`: a
 * scalar after a closing `]` is quoted whole), a block scalar header's extra characters
 * (`|AKIA…`), a `%YAML` directive's version, a double-quoted string's bad escape (`\U` and the
 * 8 characters after it), a plain scalar the JSON schema cannot resolve, a repeated `!!omap` key.
 */
const SOURCE_QUOTING: ReadonlyArray<readonly [RegExp, string]> = [
  [/^(.*?): "(?:[^"\\]|\\.)*"(?= at line \d+, column \d+:$|$)/, '$1 (its text is not repeated)'],
  [/^Block scalar header includes extra characters: .*?(?= at line \d+, column \d+:$|$)/, 'Block scalar header includes extra characters (after | or > only an indentation or chomping indicator may stand; its text is not repeated)'],
  [/^Unsupported YAML version .*?(?= at line \d+, column \d+:$|$)/, 'Unsupported YAML version (its text is not repeated)'],
  [/^Invalid escape sequence .*?(?= at line \d+, column \d+:$|$)/, 'Invalid escape sequence in a double-quoted string (its text is not repeated)'],
  [/^Unresolved plain scalar .*?(?= at line \d+, column \d+:$|$)/, 'Unresolved plain scalar (its text is not repeated)'],
  [/^Ordered maps must not include duplicate keys: .*?(?= at line \d+, column \d+:$|$)/, 'Ordered maps must not include duplicate keys (the key is not repeated)'],
];

/**
 * The first line of a yaml library error, as a load message may show it: later lines quote the
 * source, and a tag in it is text from the file like any other (it may be a pasted credential).
 * The messages that quote the file's text in their first line say what is wrong without it.
 */
export function yamlErrorLine(e: { code: string; message: string }): string {
  const first = e.message.split('\n')[0] ?? e.message;
  if (e.code === 'TAG_RESOLVE_FAILED' && TAG_QUOTING.test(first)) {
    return 'cannot resolve the YAML tag here (a handle such as !e! needs a %TAG directive; its text is not repeated)';
  }
  for (const [quoting, instead] of SOURCE_QUOTING) if (quoting.test(first)) return first.replace(quoting, instead);
  return first;
}

/** A document with a tag Warden does not implement; the message names the tag, never the value. */
export class YamlTagError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(message);
    this.name = 'YamlTagError';
  }
}

/**
 * What `yaml.parse` returns for one document, with tags checked: a syntax error is the library's
 * (a YAMLParseError with `linePos`; a duplicate key too, found in one pass: yaml-unique-keys.ts),
 * a tag problem a YamlTagError at the tag.
 */
export function parseYamlValue(text: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { ...YAML_TAG_OPTIONS, ...NO_LIBRARY_UNIQUE_KEYS, lineCounter });
  addDuplicateKeyErrors(doc, lineCounter);
  if (doc.errors.length > 0) throw doc.errors[0];
  const [problem] = [...yamlTagProblems(doc), ...yamlKeyProblems(doc)];
  if (problem) {
    const { line, col } = lineCounter.linePos(problem.offset);
    throw new YamlTagError(problem.message, line, col);
  }
  return doc.toJS();
}
