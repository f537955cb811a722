// Registers handlers with functions-framework: one place, typed, no casts at the call sites.
import * as ff from '@google-cloud/functions-framework';
import type { CloudEventLike } from '../events/pubsub-message.js';
import type { HttpRequestLike, HttpResponseLike } from '../http/http-function.js';

export type HttpHandler = (
  req: HttpRequestLike,
  res: HttpResponseLike,
) => Promise<void> | undefined;
export type EventHandler = (event: CloudEventLike) => Promise<void>;

/** An HTTP function: the framework's express request and response are what HttpRequestLike names. */
export function registerHttp(name: string, handler: HttpHandler): void {
  ff.http(name, (req, res) => handler(req, res));
}

/** A CloudEvent (Pub/Sub push) function. */
export function registerEvent(name: string, handler: EventHandler): void {
  ff.cloudEvent<unknown>(name, (event: CloudEventLike) => handler(event));
}
