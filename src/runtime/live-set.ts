/**
 * The hot-reloadable part of Warden: the policy engine and the template store, held as ONE
 * object so a reload swaps both at once. A request reads the set through getters on every call,
 * so it sees either the old set or the new one, never half of each.
 */
import type { PolicyEngine, TemplateStore } from '../pipeline/ports.js';

export interface LiveSet {
  readonly policy: PolicyEngine;
  readonly templates: TemplateStore;
  /** When this set started serving (ISO-8601). */
  readonly loadedAt: string;
}

export class LiveSetHolder {
  private current: LiveSet | undefined;

  get(): LiveSet | undefined {
    return this.current;
  }

  swap(next: LiveSet): LiveSet | undefined {
    const previous = this.current;
    this.current = next;
    return previous;
  }

  /** Getters for stage factories; they throw when nothing is loaded yet (the pipeline fails closed). */
  readonly policy = (): PolicyEngine => {
    const c = this.current;
    if (!c) throw new Error('policies are not loaded');
    return c.policy;
  };

  readonly templates = (): TemplateStore => {
    const c = this.current;
    if (!c) throw new Error('templates are not loaded');
    return c.templates;
  };
}
