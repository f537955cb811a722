// Prints one loud line when integration tests were skipped because the emulators are missing.
import type { Reporter, TestModule } from 'vitest/node';

export default class SkipReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const missing = process.env.CLEARANCE_EMULATORS_MISSING;
    if (!missing) return;
    let skipped = 0;
    for (const m of testModules) {
      if (m.project.name !== 'integration') continue;
      for (const t of m.children.allTests()) if (t.result().state === 'skipped') skipped += 1;
    }
    const line = `INTEGRATION SUITE SKIPPED: ${skipped} integration tests did not run (not passed) because the emulators are missing.`;
    process.stderr.write(
      `\n${'!'.repeat(line.length)}\n${line}\n${missing}\n${'!'.repeat(line.length)}\n\n`,
    );
  }
}
