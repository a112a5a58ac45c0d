/**
 * `every` over a domain that is no collection is false, as in OPA (its cases
 * `v1/every/non_iterable_domain.yaml`, absent from the shared compliance set): the engine held it
 * vacuously true, so `allow if every t in input.tools { … }` allowed a caller who sent a string,
 * a number or null where the policy expected a list.
 */
import { describe, expect, it } from 'vitest';
import { policy } from './helpers.js';

describe('every over a domain that is not a collection', () => {
  it('is false for numbers, strings, booleans, null, calls, rules, data and input', () => {
    const domains = ['42', '"foobar"', 'true', 'null', 'floor(13.37)', 'foo(1, 2)', 'q', 'data.iterate_me', 'input.iterate_me', 'input'];
    for (const d of domains) {
      const src = `package test\nimport rego.v1\ndefault p := 1\np := 2 if {\n every v in ${d} { v > 1 }\n}\nfoo(a, b) := a + b\nq := 1\n`;
      const input = d === 'input' ? 1 : { iterate_me: 1 };
      expect(policy(src, { iterate_me: 1 }).evaluate('data.test.p', input), d).toBe(1);
      // With a key too.
      const kv = src.replace('every v in', 'every _, v in');
      expect(policy(kv, { iterate_me: 1 }).evaluate('data.test.p', input), `${d} (key, value)`).toBe(1);
    }
  });

  it('still holds over empty collections and fails where an element does not satisfy it', () => {
    const src = 'package test\nimport rego.v1\ndefault p := 1\np := 2 if {\n every v in input.l { v > 1 }\n}\n';
    const p = policy(src);
    for (const l of [[], {}, [2, 3], { a: 2 }]) expect(p.evaluate('data.test.p', { l }), JSON.stringify(l)).toBe(2);
    expect(p.evaluate('data.test.p', { l: [2, 1] })).toBe(1);
    // Undefined domain: the expression is undefined, as before.
    expect(p.evaluate('data.test.p', {})).toBe(1);
  });

  it('a policy allowing only listed tools denies a caller who sends a string instead of a list', () => {
    const src = `
package warden
import rego.v1
allowed := {"search", "calculator"}
default allow := false
allow if every t in input.tools { t in allowed }
`;
    const p = policy(src);
    expect(p.evaluate('data.warden.allow', { tools: ['search'] })).toBe(true);
    expect(p.evaluate('data.warden.allow', { tools: ['shell'] })).toBe(false);
    expect(p.evaluate('data.warden.allow', { tools: 'shell' })).toBe(false);
    expect(p.evaluate('data.warden.allow', { tools: 7 })).toBe(false);
    expect(p.evaluate('data.warden.allow', { tools: null })).toBe(false);
  });
});
