// The hello-world baseline for bench/check.ts: a bare functions-framework HTTP function.
import * as ff from '@google-cloud/functions-framework';

ff.http('checkHello', (_req, res) => {
  res.status(200).json({ hello: 'world' });
});
