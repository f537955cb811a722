// Serves one function with functions-framework's own server on 127.0.0.1 (the framework's CLI binds every interface).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { getTestServer } from '@google-cloud/functions-framework/testing';

function arg(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

const target = arg('target') ?? process.env.FUNCTION_TARGET;
const port = Number(arg('port') ?? process.env.PORT ?? 8080);
if (!target) throw new Error('usage: serve-function --target=NAME [--port=N] [--source=MODULE]');
process.env.FUNCTION_TARGET = target;
const source = arg('source');
// Without --source, the deployment entry point loads just the target's module.
await import(source ? pathToFileURL(resolve(source)).href : '../index.js');
const server = getTestServer(target);
server
  .listen(port, '127.0.0.1', () => {
    process.stdout.write(`${target} serving on http://127.0.0.1:${port}\n`);
  })
  // As the framework's CLI does: no idle timeout on incoming connections.
  .setTimeout(0);
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
