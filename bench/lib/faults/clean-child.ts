// The clean run, in its own process (fresh function instances): each event once, in publish order, under no fault.
import { readFileSync, writeFileSync } from 'node:fs';
import { applyPolicy, CLEAN_PROJECT, cleanRun } from './run.js';
import type { WorkloadEvent } from './scenario.js';
import { type InfraInfo, startFunctions } from './stack.js';

const info = JSON.parse(process.env.FAULTS_INFRA ?? '') as InfraInfo;
const events = JSON.parse(readFileSync(process.env.FAULTS_EVENTS ?? '', 'utf8')) as WorkloadEvent[];
const stack = await startFunctions(info, { projectId: CLEAN_PROJECT, random: () => 1 });
try {
  await applyPolicy(stack);
  const t0 = Date.now();
  const broker = await cleanRun(stack, events, {
    maxAttempts: Number(process.env.FAULTS_MAX_ATTEMPTS ?? 10),
  });
  writeFileSync(
    process.env.FAULTS_RESULT ?? '',
    JSON.stringify({
      deadLettered: broker.stats.deadLettered.length,
      seconds: (Date.now() - t0) / 1000,
    }),
  );
} finally {
  await stack.close();
}
process.exit(0);
