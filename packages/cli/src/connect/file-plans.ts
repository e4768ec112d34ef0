import { editConfig, isPlainObject, type KeyEdit, lineEnding, parseConfig, sameValue, valueAt } from './config-formats.js';
import type { AppliedSetting, FileRecord } from './connect-state.js';
import type { JsonValue, StructuredChange, StructuredFormat, TargetId } from './connect-types.js';
import { checkEditable, readDocument, readOriginal, removeDocument, writeDocument } from './documents.js';
import { FileAccessError, type FileSnapshot, removeEmptyDirs, removeFile, sha256, writeBackup } from './file-io.js';
import type { ShellProfile } from './machine.js';
import { findBlock, insertBlock, removeBlock, renderBlock, type ShellKind } from './profile-block.js';
import type { SqliteItem } from './sqlite-item.js';

export const BACKUP_SUFFIX = '.tokenwise.bak';

/** One file's planned change: the text before and after, and the record to keep once it is applied. */
export interface FilePlan {
  path: string;
  targets: TargetId[];
  snapshot: FileSnapshot;
  /** The new text; null deletes the file (connect created it and nothing else is in it). */
  after: string | null;
  /** Bytes to write instead of `after` when disconnect restores the backup exactly. */
  restoreBytes: Uint8Array | null;
  /** Backup path for the original, written before the first change; null when a backup exists already or the file is new. */
  backupTo: string | null;
  /** Leftovers to remove once disconnect applied the plan: the backup it restored, directories connect created. */
  cleanup: { backup: string | null; createdDirs: string[] };
  /** The record to keep about the file after applying; null when connect no longer owns anything in it. */
  record: FileRecord | null;
  /** Values the change replaces that connect did not write: another gateway, a local model server. */
  conflicts: string[];
  notes: string[];
}

export function changesAnything(plan: FilePlan): boolean {
  if (plan.after === null) return plan.snapshot.exists;
  return plan.restoreBytes !== null || plan.after !== plan.snapshot.text;
}

/** Plan connect's edits of one JSON, JSONC or TOML file. Throws `ConfigParseError` or `FileAccessError`. */
export async function planStructuredConnect(change: StructuredChange, target: TargetId, prior: FileRecord | undefined): Promise<FilePlan> {
  const snapshot = await readWritableSnapshot(change.path, change.item);
  const document = parseConfig(change.format, snapshot.text, change.path);

  const edits: KeyEdit[] = [];
  const conflicts: string[] = [];
  const settings: AppliedSetting[] = (prior?.settings ?? []).filter((setting) => setting.target !== target);
  for (const setting of change.settings) {
    const earlier = prior?.settings.find((applied) => applied.target === target && sameKey(applied.key, setting.key));
    const current = valueAt(document, setting.key);
    const name = setting.key.join('.');

    if (setting.onlyIfMissing && current !== undefined) {
      // A value the person chose stays; one connect set earlier stays recorded, so disconnect removes it.
      if (earlier) settings.push(earlier);
      continue;
    }
    if (!sameValue(current, setting.value)) {
      edits.push({ key: setting.key, value: setting.value });
      // An empty string points nowhere (Cursor stores "" for an unset base URL), so replacing it is no conflict.
      if (current !== undefined && current !== '' && !earlier)
        conflicts.push(`${name} is ${JSON.stringify(toJsonValue(current))} now; connect replaces it`);
      if (current !== undefined && earlier && !sameValue(current, earlier.value)) {
        conflicts.push(`${name} was changed to ${JSON.stringify(toJsonValue(current))} since the last connect; connect sets it again`);
      }
    }
    settings.push(
      earlier
        ? { ...earlier, value: setting.value }
        : {
            target,
            key: setting.key,
            value: setting.value,
            previous: current === undefined ? { present: false } : { present: true, value: toJsonValue(current) },
            createdParents: missingParents(document, setting.key),
          },
    );
  }

  // Keys an earlier connect set that this plan no longer sets (Codex after a switch of login) go back first.
  const stale = (prior?.settings ?? []).filter(
    (applied) => applied.target === target && !change.settings.some((setting) => sameKey(setting.key, applied.key)),
  );
  const undone = undoSettings(change.format, snapshot.text, stale, change.path, []);
  const after = editConfig(change.format, undone, edits, change.path);
  const record = connectRecord(change.format, snapshot, after, prior, { settings });
  if (change.item) record.item = change.item;
  return { ...connectPlanBase(change.path, [target], snapshot, prior), after, record, conflicts };
}

/**
 * Plan the marked block of one shell profile, holding every connected target's variables. A block left by
 * an earlier connect is replaced in place.
 */
export async function planProfileConnect(
  profile: ShellProfile,
  varsByTarget: Partial<Record<TargetId, Record<string, string>>>,
  prior: FileRecord | undefined,
): Promise<FilePlan> {
  const snapshot = await readWritableSnapshot(profile.path);
  const targets = (Object.keys(varsByTarget) as TargetId[]).sort();
  const eol = snapshot.exists || profile.shell !== 'powershell' ? lineEnding(snapshot.text) : '\r\n';

  const hadBlock = findBlock(snapshot.text) !== null;
  const inserted = insertBlock(snapshot.text, renderBlock(profile.shell, mergeVars(targets, varsByTarget), eol), eol);
  const separator = hadBlock ? (prior?.block?.separator ?? '') : inserted.separator;
  const block = { targets, separator };

  return {
    ...connectPlanBase(profile.path, targets, snapshot, prior),
    after: inserted.text,
    record: connectRecord('profile', snapshot, inserted.text, prior, { settings: [], block, shell: profile.shell }),
  };
}

/**
 * Plan how disconnect undoes connect's changes to one file for `targets`. When the file is exactly what
 * connect wrote and nothing else of connect's stays in it, the original comes back byte for byte (or the
 * file goes, if connect created it). Otherwise only connect's keys and block go, and the person's later
 * edits stay; a key the person changed since is left as they set it.
 */
export async function planDisconnect(
  path: string,
  record: FileRecord,
  targets: ReadonlySet<TargetId>,
  remainingVars: Partial<Record<TargetId, Record<string, string>>>,
): Promise<FilePlan> {
  const snapshot = await readDocument(path, record.item);
  const notes: string[] = [];
  const keptSettings = record.settings.filter((setting) => !targets.has(setting.target));
  const keptBlockTargets = record.block?.targets.filter((target) => !targets.has(target)) ?? [];
  const ownsNothingAfter = keptSettings.length === 0 && keptBlockTargets.length === 0;
  const base = {
    path,
    targets: targetsOf(record).filter((target) => targets.has(target)),
    snapshot,
    restoreBytes: null,
    backupTo: null,
    cleanup: { backup: null, createdDirs: [] as string[] },
    conflicts: [],
    notes,
  };

  if (!snapshot.exists) {
    if (record.original.existed) notes.push(`${path} was deleted since connect, so there is nothing to restore`);
    const cleanup = { backup: null, createdDirs: record.original.existed || !ownsNothingAfter ? [] : record.createdDirs };
    return { ...base, after: null, cleanup, record: ownsNothingAfter ? null : record };
  }
  await checkEditable(snapshot);

  if (ownsNothingAfter && record.pristine && snapshot.sha256 === record.writtenSha256) {
    if (!record.original.existed) return { ...base, after: null, cleanup: { backup: null, createdDirs: record.createdDirs }, record: null };
    const original = record.backup ? await readOriginal(record.backup, record.item) : null;
    if (original && sha256(original) === record.original.sha256) {
      const restoreBytes = new Uint8Array(original);
      return { ...base, after: original.toString('utf8'), restoreBytes, cleanup: { backup: record.backup, createdDirs: [] }, record: null };
    }
    notes.push(`the backup ${record.backup ?? ''} is missing or changed, so only connect's edits are removed`);
  }

  const after =
    record.kind === 'profile'
      ? undoProfile(snapshot.text, record.shell ?? 'posix', record.block?.separator ?? '', mergeVars(keptBlockTargets, remainingVars))
      : undoStructured(snapshot.text, record, targets, path, notes);
  if (ownsNothingAfter && !record.original.existed && isEmptyDocument(record, after, path)) {
    return { ...base, after: null, cleanup: { backup: null, createdDirs: record.createdDirs }, record: null };
  }
  if (ownsNothingAfter && record.backup) notes.push(`kept the file as it was before connect in ${record.backup}`);

  const nextRecord: FileRecord | null = ownsNothingAfter
    ? null
    : {
        ...record,
        settings: keptSettings,
        ...(record.block ? { block: { ...record.block, targets: keptBlockTargets } } : {}),
        writtenSha256: sha256(after),
        pristine: record.pristine && snapshot.sha256 === record.writtenSha256,
      };
  return { ...base, after, record: nextRecord };
}

/**
 * Write a planned change: back up the original before connect's first change to the file, then write
 * atomically, restore or delete. The file must still be as it was when planned. Returns the record to keep.
 */
export async function applyFilePlan(plan: FilePlan): Promise<FileRecord | null> {
  const now = await readDocument(plan.path, plan.snapshot.item);
  if (now.sha256 !== plan.snapshot.sha256) {
    throw new FileAccessError(`${plan.path} changed while connect waited for the [Y/n] reply: run the command again`);
  }

  if (plan.backupTo) await writeBackup(plan.snapshot, plan.backupTo);

  if (plan.after === null) {
    if (plan.snapshot.exists) await removeDocument(plan.snapshot);
  } else if (changesAnything(plan)) {
    const createdDirs = await writeDocument(plan.snapshot, plan.restoreBytes ?? plan.after);
    if (plan.record && createdDirs.length > 0) plan.record.createdDirs = [...plan.record.createdDirs, ...createdDirs];
  }

  if (plan.cleanup.backup) await removeFile(plan.cleanup.backup);
  await removeEmptyDirs(plan.cleanup.createdDirs);
  return plan.record;
}

function connectPlanBase(path: string, targets: TargetId[], snapshot: FileSnapshot, prior: FileRecord | undefined) {
  return {
    path,
    targets,
    snapshot,
    restoreBytes: null,
    backupTo: prior === undefined && snapshot.exists ? `${path}${BACKUP_SUFFIX}` : null,
    cleanup: { backup: null, createdDirs: [] },
    conflicts: [] as string[],
    notes: [] as string[],
  };
}

function connectRecord(
  kind: FileRecord['kind'],
  snapshot: FileSnapshot,
  after: string,
  prior: FileRecord | undefined,
  content: Pick<FileRecord, 'settings' | 'block' | 'shell'>,
): FileRecord {
  const unchangedSincePrior = prior !== undefined && snapshot.sha256 === prior.writtenSha256;
  return {
    kind,
    ...(content.shell ? { shell: content.shell } : {}),
    original: prior?.original ?? { existed: snapshot.exists, sha256: snapshot.sha256 },
    backup: prior?.backup ?? (snapshot.exists ? `${snapshot.path}${BACKUP_SUFFIX}` : null),
    writtenSha256: sha256(after),
    // Edits the person made between two connects are in the new text but not in the backup.
    pristine: prior === undefined ? true : prior.pristine && unchangedSincePrior,
    createdDirs: prior?.createdDirs ?? [],
    settings: content.settings,
    ...(content.block ? { block: content.block } : {}),
  };
}

function undoStructured(text: string, record: FileRecord, targets: ReadonlySet<TargetId>, path: string, notes: string[]): string {
  const removed = record.settings.filter((setting) => targets.has(setting.target));
  return undoSettings(record.kind as StructuredFormat, text, removed, path, notes);
}

/**
 * Put back what was there before each setting, where the value is still the one connect wrote. Tables
 * connect created (such as "env") go too once nothing is left in them, deepest first.
 */
function undoSettings(format: StructuredFormat, text: string, settings: AppliedSetting[], path: string, notes: string[]): string {
  if (settings.length === 0) return text;
  const document = parseConfig(format, text, path);
  const edits: KeyEdit[] = [];
  for (const setting of settings) {
    const current = valueAt(document, setting.key);
    if (!sameValue(current, setting.value)) {
      if (current !== undefined) notes.push(`kept ${setting.key.join('.')} as it is: it was changed since connect`);
      continue;
    }
    edits.push({ key: setting.key, value: setting.previous.present ? setting.previous.value : undefined });
  }
  let after = editConfig(format, text, edits, path);

  const parents = settings.flatMap((setting) => setting.createdParents).sort((a, b) => b.length - a.length);
  for (const parent of parents) {
    const value = valueAt(parseConfig(format, after, path), parent);
    if (isPlainObject(value) && Object.keys(value).length === 0)
      after = editConfig(format, after, [{ key: parent, value: undefined }], path);
  }
  return after;
}

function undoProfile(text: string, shell: ShellKind, separator: string, keptVars: Record<string, string>): string {
  if (Object.keys(keptVars).length === 0) return removeBlock(text, separator);
  const eol = lineEnding(text);
  return insertBlock(text, renderBlock(shell, keptVars, eol), eol).text;
}

/** True when a file connect created contains nothing once connect's part is gone, so it can be deleted. */
function isEmptyDocument(record: FileRecord, text: string, path: string): boolean {
  if (text.trim() === '') return true;
  if (record.kind === 'profile' || record.kind === 'toml') return false;
  // A comment the person added keeps the file.
  return Object.keys(parseConfig(record.kind, text, path)).length === 0 && !/\/[/*]/.test(text);
}

async function readWritableSnapshot(path: string, item?: SqliteItem): Promise<FileSnapshot> {
  const snapshot = await readDocument(path, item);
  await checkEditable(snapshot);
  return snapshot;
}

function mergeVars(targets: TargetId[], varsByTarget: Partial<Record<TargetId, Record<string, string>>>): Record<string, string> {
  return Object.assign({}, ...targets.map((target) => varsByTarget[target] ?? {})) as Record<string, string>;
}

function missingParents(document: Record<string, unknown>, key: string[]): string[][] {
  const missing: string[][] = [];
  for (let depth = 1; depth < key.length; depth += 1) {
    if (valueAt(document, key.slice(0, depth)) === undefined) missing.push(key.slice(0, depth));
  }
  return missing;
}

function sameKey(left: string[], right: string[]): boolean {
  return left.length === right.length && left.every((part, index) => part === right[index]);
}

function targetsOf(record: FileRecord): TargetId[] {
  return [...new Set([...record.settings.map((setting) => setting.target), ...(record.block?.targets ?? [])])];
}

/** TOML integers may parse as bigint and dates as Date objects; the state file stores JSON. */
function toJsonValue(value: unknown): JsonValue {
  return JSON.parse(JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? item.toString() : item))) as JsonValue;
}
