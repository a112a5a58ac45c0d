import { describe, expect, it } from 'vitest';
import { grantedModels, modelAllowed } from '../../src/pipeline/model-grant.js';

describe('model grant', () => {
  it('allows the named models, or any model with *', () => {
    expect(modelAllowed(['gpt-4o-mini'], 'gpt-4o-mini')).toBe(true);
    expect(modelAllowed(['gpt-4o-mini'], 'gpt-4o')).toBe(false);
    expect(modelAllowed(['*'], 'anything')).toBe(true);
    expect(modelAllowed([], 'gpt-4o-mini')).toBe(false);
  });

  it('lists the configured models a decision grants, in configuration order', () => {
    const configured = ['b-model', 'a-model', 'c-model'];
    expect(grantedModels(['*'], configured)).toEqual(configured);
    expect(grantedModels(['c-model', 'b-model', 'unrouted'], configured)).toEqual(['b-model', 'c-model']);
    expect(grantedModels([], configured)).toEqual([]);
  });
});
