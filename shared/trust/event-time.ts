// Event time comes from the receiving side; a payload's own timestamp is only a claim, kept and clamped near the arrival.

/** How far before its arrival a payload may say it happened (registries retry for about this long). */
export const CLAIM_PAST_MS = 60 * 60_000;
/** How far after its arrival: clock skew only. */
export const CLAIM_FUTURE_MS = 5 * 60_000;

export interface EventTime {
  /** When the event is taken to have happened: the arrival (request time, Pub/Sub publishTime). */
  at: string;
  /** The payload's own timestamp clamped to [arrival − 1 h, arrival + 5 min]; null when it gave none or none parses. */
  claimedAt: string | null;
  /** Whether the claim lay outside the window (worth a look: a wrong clock, or a forgery). */
  clamped: boolean;
}

/** The time of an event received at `arrival` whose payload claims `claimed`. */
export function eventTime(arrival: Date | string, claimed: string | null | undefined): EventTime {
  const arrivalMs = typeof arrival === 'string' ? Date.parse(arrival) : arrival.getTime();
  if (Number.isNaN(arrivalMs)) throw new Error(`arrival time ${String(arrival)} does not parse`);
  const at = new Date(arrivalMs).toISOString();
  const claimedMs = claimed ? Date.parse(claimed) : Number.NaN;
  if (Number.isNaN(claimedMs)) return { at, claimedAt: null, clamped: false };
  const lo = arrivalMs - CLAIM_PAST_MS;
  const hi = arrivalMs + CLAIM_FUTURE_MS;
  const kept = Math.min(hi, Math.max(lo, claimedMs));
  return { at, claimedAt: new Date(kept).toISOString(), clamped: kept !== claimedMs };
}
