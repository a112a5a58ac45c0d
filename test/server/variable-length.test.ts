/**
 * `limits.max_variable_length` counts characters (code points), as README says and as a
 * template's `max_length` does: an emoji is one character, not two UTF-16 units.
 */
import { describe, expect, it } from 'vitest';
import { checkVariables } from '../../src/server/request.js';

const limits = { maxVariables: 8, maxVariableLength: 10 } as Parameters<typeof checkVariables>[1];

describe('ingress variable length', () => {
  it('counts code points: 10 emoji pass a limit of 10, 11 do not', () => {
    expect(() => checkVariables({ x: '😀'.repeat(10) }, limits)).not.toThrow();
    expect(() => checkVariables({ x: 'a'.repeat(10) }, limits)).not.toThrow();
    expect(() => checkVariables({ x: '😀'.repeat(11) }, limits)).toThrow(expect.objectContaining({ code: 'variable_invalid' }));
    expect(() => checkVariables({ x: 'a'.repeat(11) }, limits)).toThrow(expect.objectContaining({ code: 'variable_invalid' }));
  });

  it('the refusal names the variable in details (as the template stage does) and the field path given', () => {
    let err: any;
    try {
      checkVariables({ note: 'a'.repeat(11) }, limits, 'variables');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'variable_invalid', details: { variable: 'note' }, location: { path: 'variables.note' } });
  });
});
