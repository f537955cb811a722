// Time as a dependency: code asks a Clock instead of reading the system time, so tests pass `now` in.

export interface Clock {
  now(): Date;
}

export const systemClock = { now: () => new Date() } satisfies Clock;

/** A clock that stands still until moved; for tests and benchmarks. */
export function fixedClock(
  start: Date | string,
): Clock & { advance(ms: number): void; set(d: Date | string): void } {
  let t = new Date(start).getTime();
  return {
    now: () => new Date(t),
    advance: (ms: number) => {
      t += ms;
    },
    set: (d: Date | string) => {
      t = new Date(d).getTime();
    },
  };
}
