// The registry module's public surface: client, token sources and manifest schemas.
export * from './client.js';
export * from './schemas.js';
export * from './tokens.js';
