/**
 * An alias (`*name`) with no anchor (`&name`) before it. The yaml library finds it only when it
 * converts the document, and throws a bare ReferenceError, the same class as its alias-count
 * error: the loaders tell the two apart here, so that a typo (`*teem` for `*team`) is not
 * reported as an alias bomb.
 */
import { isAlias, isNode, visit, type Document } from 'yaml';
import { isQuotableName, unquotedReason } from './secret-literals.js';

export interface UnresolvedAlias {
  /** Where the alias is written: an offset into the text. */
  offset: number;
  message: string;
}

/**
 * The document's first alias whose anchor is not set before it (in document order, as the
 * library resolves them), or undefined. The name is repeated only when it is a short identifier
 * no credential pattern matches.
 */
export function unresolvedAlias(doc: Document): UnresolvedAlias | undefined {
  const anchors = new Set<string>();
  let found: UnresolvedAlias | undefined;
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) {
        if (anchors.has(node.source)) return undefined;
        const name = isQuotableName(node.source) ? `alias *${node.source} has` : `an alias has`;
        const hidden = isQuotableName(node.source) ? '' : ` (its name is not shown: ${unquotedReason(node.source)})`;
        found = { offset: node.range?.[0] ?? 0, message: `${name} no anchor before it${hidden} (anchors are written &name, before their first use)` };
        return visit.BREAK;
      }
      if (isNode(node) && node.anchor) anchors.add(node.anchor);
      return undefined;
    },
  });
  return found;
}
