export * from './migrations.js';
export * from './postgres-copy.js';
export * from './postgres-store.js';
export * from './sqlite-backup.js';
export * from './sqlite-store.js';
export * from './store.js';
