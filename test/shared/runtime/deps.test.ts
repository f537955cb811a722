import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../shared/logging/logger.js';
import { depsFactory } from '../../../shared/runtime/deps.js';
import { createRoot } from '../../../shared/runtime/root.js';

const quiet = createLogger({ sink: () => {} });
const rootOf = () => createRoot({ CLEARANCE_PROJECT_ID: 'p' }, { logger: quiet });

interface Deps {
  n: number;
}

describe('depsFactory', () => {
  it('builds once per root and answers ready() synchronously after the first build', async () => {
    let builds = 0;
    const deps = depsFactory(async (): Promise<Deps> => ({ n: ++builds }));
    const a = rootOf();
    const b = rootOf();
    expect(deps.ready(a)).toBeUndefined();
    const [x, y] = await Promise.all([deps(a), deps(a)]);
    expect(x).toBe(y);
    expect(deps.ready(a)).toBe(x);
    expect((await deps(b)).n).toBe(2);
    expect(builds).toBe(2);
  });

  it('forgets a failed build, so the next call tries again', async () => {
    let calls = 0;
    const deps = depsFactory(async (): Promise<Deps> => {
      calls += 1;
      if (calls === 1) throw new Error('UNAVAILABLE: auth not ready');
      return { n: calls };
    });
    const r = rootOf();
    await expect(deps(r)).rejects.toThrow(/UNAVAILABLE/);
    expect(deps.ready(r)).toBeUndefined();
    expect(await deps(r)).toEqual({ n: 2 });
  });

  it('uses what provide() put in place instead of building', async () => {
    const deps = depsFactory(async (): Promise<Deps> => {
      throw new Error('must not build');
    });
    const r = rootOf();
    const fake = { n: 42 } satisfies Deps;
    deps.provide(r, fake);
    expect(deps.ready(r)).toBe(fake);
    expect(await deps(r)).toBe(fake);
  });
});
