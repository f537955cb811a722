// Dashboard settings from the environment, parsed with zod (kept beside the dashboard so it merges cleanly).
import { z } from 'zod';
import { ClearanceError } from '../errors.js';

const list = z
  .string()
  .optional()
  .transform((s) =>
    (s ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  );

export const DashboardConfig = z
  .object({
    /** Shared secret for local use and break-glass access; sent as a bearer token or signed in once. */
    CLEARANCE_DASHBOARD_TOKEN: z.string().min(16).optional(),
    /** Audiences accepted on Google ID tokens (the function's URL, or the IAP client id). */
    CLEARANCE_DASHBOARD_AUDIENCES: list,
    /** Google identities (user or service-account emails) allowed to read the dashboard. */
    CLEARANCE_DASHBOARD_ALLOWED_CALLERS: list,
    CLEARANCE_CHECK_CERTS_URL: z.string().url().optional(),
  })
  .transform((c) => ({
    token: c.CLEARANCE_DASHBOARD_TOKEN,
    audiences: c.CLEARANCE_DASHBOARD_AUDIENCES,
    allowedCallers: c.CLEARANCE_DASHBOARD_ALLOWED_CALLERS,
    certsUrl: c.CLEARANCE_CHECK_CERTS_URL,
  }));
export type DashboardConfig = z.infer<typeof DashboardConfig>;

export function loadDashboardConfig(env: NodeJS.ProcessEnv = process.env): DashboardConfig {
  const parsed = DashboardConfig.safeParse(env);
  if (!parsed.success) {
    throw new ClearanceError(
      'invalid-config',
      `invalid dashboard configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}
