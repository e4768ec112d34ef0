export * from './account-store.js';
export type { BodyRow } from './body-columns.js';
export {
  type BodiesToPack,
  BodyPacker,
  type BodyPackerOptions,
  derivePromptText,
  LOST_BODY_ERROR,
  type PackedBodies,
  type PromptToDerive,
  packBodies,
} from './body-packer.js';
export * from './budget-store.js';
export * from './call-queries.js';
export { rebuildRollupsSteps } from './call-rollups.js';
export * from './insight-store.js';
export * from './migrations.js';
export * from './postgres-copy.js';
export * from './postgres-errors.js';
export * from './postgres-store.js';
export * from './report-store.js';
export * from './sql-account-store.js';
export * from './sqlite-backup.js';
export * from './sqlite-migrations.js';
export * from './sqlite-store.js';
export * from './store.js';
