// The registry module's public surface: client, token sources, references and manifest schemas.
export * from './client.js';
export * from './reference.js';
export * from './schemas.js';
export * from './tokens.js';
