export * from './sqlite-store.js';
export * from './store.js';
