// One typed factory per function: its dependencies built once per composition root, on first use, with no string keys.
import type { Root } from './root.js';

/** Builds a function's `deps` from a root; `ready` answers synchronously once they are built. */
export interface DepsFactory<D> {
  (root: Root): Promise<D>;
  /** The built dependencies, or undefined before the first build finishes (no promise on a hot path). */
  ready(root: Root): D | undefined;
  /** Puts `deps` in place for `root` before first use (tests: a fake that `satisfies` the interface). */
  provide(root: Root, deps: D): void;
}

/**
 * Memoises `build` per root (tests and benchmarks make their own roots). Heavy clients stay lazy:
 * `build` runs at the first request that needs them, not at module load. A failed build (e.g. a
 * transient auth error) is forgotten, so the next request tries again instead of poisoning the instance.
 */
export function depsFactory<D>(build: (root: Root) => Promise<D>): DepsFactory<D> {
  const pending = new WeakMap<Root, Promise<D>>();
  const built = new WeakMap<Root, D>();
  const factory = (root: Root): Promise<D> => {
    let p = pending.get(root);
    if (!p) {
      p = build(root).then((d) => {
        built.set(root, d);
        return d;
      });
      pending.set(root, p);
      p.catch(() => pending.delete(root));
    }
    return p;
  };
  return Object.assign(factory, {
    ready: (root: Root) => built.get(root),
    provide: (root: Root, deps: D) => {
      pending.set(root, Promise.resolve(deps));
      built.set(root, deps);
    },
  });
}
