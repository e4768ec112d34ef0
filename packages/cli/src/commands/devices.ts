import { parseArgs } from 'node:util';
import { describeDevice, findLocalWorkspace, resolveDataDir } from '@tokenwise/server';
import { type ApiTarget, findApiTarget, requestAllPages, requestApi, ServerUnreachableError } from '../api-client.js';
import { formatLocalTime } from '../call-table.js';
import { CliError, usageError } from '../cli-error.js';
import type { CliIo } from '../cli-io.js';
import { withLocalStore } from '../local-store.js';
import { booleanFlagOrEnv, CLIENT_OPTIONS, COMMON_OPTIONS, joinDashValues, parseFlagsOf } from '../options.js';
import { escapeForTerminal } from '../terminal-text.js';
import { runSubcommand, type SubcommandHandler } from './subcommands.js';

export const DEVICES_HELP = `Usage: tokenwise devices list [--json] [options]
       tokenwise devices revoke ID [options]

Manage the devices of the workspace: each machine paired with "tokenwise
connect" is one, with its own route token.

Subcommands:
  list            list the devices: id, name, OS, paired, last seen, status
  revoke ID       revoke a device by its id (or a unique start of it): its
                  route token stops working at once on this server, and
                  within the token cache time (5 s by default) on others

Options:
  --json                  list: one JSON object per line                    TOKENWISE_JSON
  --data-dir DIR          data directory of the local server (default ~/.tokenwise)
                                                                            TOKENWISE_DATA_DIR
  --server URL            use this server; needs TOKENWISE_API_TOKEN of an
                          owner                                             TOKENWISE_SERVER
  -h, --help              show this help

With no server running, the commands use the database in the data directory.
`;

/** Shortest id prefix `revoke` accepts, so a typo cannot match by chance. */
const MIN_ID_PREFIX_LENGTH = 4;

type DeviceDescription = ReturnType<typeof describeDevice>;

const SUBCOMMANDS: Record<string, SubcommandHandler> = {
  list: listSubcommand,
  revoke: revokeSubcommand,
};

export function devicesCommand(args: string[], io: CliIo): Promise<number> {
  return runSubcommand('devices', DEVICES_HELP, SUBCOMMANDS, args, io);
}

async function listSubcommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlagsOf('devices list', () =>
    parseArgs({ args: joinDashValues(args), strict: true, options: { ...COMMON_OPTIONS, ...CLIENT_OPTIONS, json: { type: 'boolean' } } }),
  ).values;
  if (flags.help) {
    io.stdout.write(DEVICES_HELP);
    return 0;
  }

  const devices = await listDevices(flags.server, resolveDataDir(flags['data-dir'], io.env), io);
  if (booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON')) {
    for (const device of devices) io.stdout.write(`${JSON.stringify(device)}\n`);
  } else if (devices.length === 0) {
    io.stdout.write('No devices yet: pair one with "tokenwise connect --server URL".\n');
  } else {
    io.stdout.write(formatDeviceTable(devices));
  }
  return 0;
}

async function listDevices(serverFlag: string | undefined, dataDir: string, io: CliIo): Promise<DeviceDescription[]> {
  const target = await findApiTarget(serverFlag, dataDir, io.env);
  if (target) {
    try {
      return await listDevicesFromApi(target);
    } catch (error) {
      if (!(error instanceof ServerUnreachableError) || target.kind !== 'local') throw error;
      io.stderr.write(`tokenwise: ${error.message}; reading the database directly\n`);
    }
  }
  return withLocalStore(
    dataDir,
    async (store) => {
      const workspace = await findLocalWorkspace(store);
      return workspace === null ? [] : (await store.listDevices(workspace.id)).map((device) => describeDevice(device, workspace));
    },
    { readonly: true },
  );
}

async function listDevicesFromApi(target: ApiTarget): Promise<DeviceDescription[]> {
  return requestAllPages<DeviceDescription>(target, '/api/v1/devices', 'devices');
}

async function revokeSubcommand(args: string[], io: CliIo): Promise<number> {
  const parsed = parseFlagsOf('devices revoke', () =>
    parseArgs({ args: joinDashValues(args), strict: true, allowPositionals: true, options: { ...COMMON_OPTIONS, ...CLIENT_OPTIONS } }),
  );
  if (parsed.values.help) {
    io.stdout.write(DEVICES_HELP);
    return 0;
  }
  const [idArgument, ...extra] = parsed.positionals;
  if (idArgument === undefined || extra.length > 0) {
    throw usageError('expected one device id: tokenwise devices revoke ID (tokenwise devices list shows the ids)');
  }

  const dataDir = resolveDataDir(parsed.values['data-dir'], io.env);
  const target = await findApiTarget(parsed.values.server, dataDir, io.env);
  let device: DeviceDescription | null = null;
  if (target) {
    try {
      device = pickDevice(await listDevicesFromApi(target), idArgument.trim());
      await requestApi(target, `/api/v1/devices/${encodeURIComponent(device.id)}/revoke`, { method: 'POST' });
    } catch (error) {
      if (!(error instanceof ServerUnreachableError) || target.kind !== 'local') throw error;
      io.stderr.write(`tokenwise: ${error.message}; writing to the database directly\n`);
      device = null;
    }
  }
  device ??= await withLocalStore(dataDir, async (store) => {
    const workspace = await findLocalWorkspace(store);
    const devices = workspace === null ? [] : (await store.listDevices(workspace.id)).map((device) => describeDevice(device, workspace));
    const found = pickDevice(devices, idArgument.trim());
    await store.revokeDevice(found.id);
    return found;
  });

  io.stderr.write(
    `Revoked device ${escapeForTerminal(device.id)} ("${escapeForTerminal(device.name)}"); its calls now get 401 invalid route.\n`,
  );
  return 0;
}

/** Find the one active device whose id is `idArgument` or starts with it. */
function pickDevice(devices: DeviceDescription[], idArgument: string): DeviceDescription {
  const exact = devices.find((device) => device.id === idArgument);
  const matches = exact
    ? [exact]
    : idArgument.length >= MIN_ID_PREFIX_LENGTH
      ? devices.filter((device) => device.id.startsWith(idArgument))
      : [];
  const quotedId = JSON.stringify(idArgument);
  if (matches.length === 0) throw new CliError(`no device with the id ${quotedId}: run tokenwise devices list for the ids`);
  if (matches.length > 1) {
    throw usageError(`the id ${quotedId} matches ${matches.length} devices: give more of it (tokenwise devices list shows the ids)`);
  }
  const [device] = matches as [DeviceDescription];
  if (device.revoked_at !== null)
    throw new CliError(`the device ${device.id} ("${device.name}") was already revoked at ${device.revoked_at}`);
  return device;
}

/** Format devices as a table with a header line; every cell is escaped, since names come from the devices. */
export function formatDeviceTable(devices: readonly DeviceDescription[]): string {
  const rows = devices.map((device) => [
    escapeForTerminal(device.id),
    escapeForTerminal(device.name),
    escapeForTerminal(device.os ?? '-'),
    escapeForTerminal(formatLocalTime(device.created_at)),
    device.last_seen_at === null ? '-' : escapeForTerminal(formatLocalTime(device.last_seen_at)),
    device.revoked_at !== null ? 'revoked' : device.privacy_mode ? 'active, private' : 'active',
  ]);
  const table = [['ID', 'NAME', 'OS', 'PAIRED', 'LAST SEEN', 'STATUS'], ...rows];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  return table
    .map(
      (row) =>
        `${row
          .map((cell, column) => cell.padEnd(widths[column]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}
