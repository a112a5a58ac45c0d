/**
 * A bound on how deeply a YAML text nests, read without parsing it. The `yaml` parser recurses
 * once per level: a few thousand levels (`[[[[…`, `- - - - …`) overflow the stack — which it
 * reports as an ordinary document error, so a policy's `yaml.is_valid` said `false` — and a few
 * thousand more exhaust memory in V8's regexp compiler and abort the process. Every YAML text
 * Warden parses (config, templates, policy data and inputs, `yaml.unmarshal`) is checked first.
 *
 * The bound adds the deepest flow nesting (`[`/`{` not yet closed), the widest indentation and
 * the most levels one line opens (its leading `- `/`? `/`: ` indicators, plus one for a `key: `):
 * the true depth never exceeds it. Brackets inside quoted strings count too; real documents stay
 * far below the limit all the same.
 */

/** The deepest YAML Warden parses (a bound as computed here, so a little generous). */
export const MAX_YAML_DEPTH = 256;

export function yamlDepthBound(text: string): number {
  let flow = 0;
  let maxFlow = 0;
  let maxIndent = 0;
  let maxLine = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    // A line: its indentation, the block indicators that open it (`- - ? x`), then one more level
    // for a `key: ` anywhere in it (a line holds at most one block mapping level of its own).
    let indent = 0;
    while (i < n && text.charCodeAt(i) === 32) {
      indent++;
      i++;
    }
    let levels = 0;
    while (i + 1 < n && isIndicator(text.charCodeAt(i)) && text.charCodeAt(i + 1) === 32) {
      levels++;
      i += 2;
      while (i < n && text.charCodeAt(i) === 32) i++;
    }
    let key = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 || c === 13) break;
      if (c === 91 || c === 123) {
        if (++flow > maxFlow) maxFlow = flow;
      } else if (c === 93 || c === 125) {
        if (flow > 0) flow--;
      } else if (c === 58 && key === 0 && (i + 1 === n || text.charCodeAt(i + 1) === 32)) key = 1;
    }
    i++;
    if (indent > maxIndent) maxIndent = indent;
    if (levels + key > maxLine) maxLine = levels + key;
  }
  return maxFlow + maxIndent + maxLine;
}

/** `-`, `?` and `:`: the block indicators when a space follows. */
function isIndicator(c: number): boolean {
  return c === 45 || c === 63 || c === 58;
}

/** True when `text` may nest deeper than `limit` levels (see yamlDepthBound). */
export function yamlTooDeep(text: string, limit = MAX_YAML_DEPTH): boolean {
  return yamlDepthBound(text) > limit;
}
