// Deployment entry point: loads only the function named by FUNCTION_TARGET, so each cold start imports one module.
import { FUNCTIONS } from './functions/manifest.js';

const target = process.env.FUNCTION_TARGET;
const chosen = target ? FUNCTIONS.filter((f) => f.name === target) : FUNCTIONS;
if (target && chosen.length === 0) {
  throw new Error(
    `FUNCTION_TARGET "${target}" is not one of: ${FUNCTIONS.map((f) => f.name).join(', ')}`,
  );
}
for (const f of chosen) await import(`./functions/${f.folder}/index.js`);
