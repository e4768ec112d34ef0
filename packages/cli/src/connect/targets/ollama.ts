import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { OLLAMA_DEFAULT_PORT, OLLAMA_OBSERVER_FILE, type OllamaObserverFile, parseOllamaListen } from '@tokenwise/server';
import { type ConnectContext, emptyPlan, type MachineContext, type Target, type TargetPlan } from '../connect-types.js';
import { findExecutable, pathExists } from '../machine.js';

/** Directory of `ollama.service` as Ollama's Linux install script writes it; TOKENWISE_SYSTEMD_DIR replaces it (tests, other layouts). */
const DEFAULT_SYSTEMD_DIR = '/etc/systemd/system';
const DROP_IN_NAME = 'tokenwise.conf';

/**
 * Ollama is a model server, not a client, so recording it means putting the Ollama observer of
 * `tokenwise serve` where its clients connect (OLLAMA_HOST, by default 127.0.0.1:11434) and moving Ollama
 * itself to the next port. connect writes `ollama-observer.json` into the local server's data directory.
 * On Linux with Ollama's systemd service it also writes a drop-in that sets the service's OLLAMA_HOST to
 * the new port, and each file is shown and asked about on its own. Elsewhere it says how to start Ollama
 * on that port.
 */
export const ollama: Target = {
  id: 'ollama',
  displayName: 'Ollama (local models)',

  async detect(context) {
    const evidence: string[] = [];
    const executable = await findExecutable('ollama', context.env, context.platform);
    if (executable) evidence.push(executable);
    if (await pathExists(join(context.home, '.ollama'))) evidence.push(join(context.home, '.ollama'));
    const unit = await systemdUnit(context);
    if (unit) evidence.push(unit);
    return { installed: evidence.length > 0, evidence };
  },

  async plan(context) {
    const plan = emptyPlan();
    if (!isLoopbackUrl(context.serverUrl)) {
      plan.skipped =
        `the Ollama observer runs inside "tokenwise serve" on the machine Ollama runs on, and ${context.serverUrl} is another machine: ` +
        'run "tokenwise serve" here and connect to it';
      return plan;
    }

    let client: { host: string; port: number };
    try {
      client = parseOllamaListen(context.env.OLLAMA_HOST || `127.0.0.1:${OLLAMA_DEFAULT_PORT}`, 'OLLAMA_HOST');
    } catch (error) {
      plan.skipped = `${(error as Error).message}; fix OLLAMA_HOST and run connect again`;
      return plan;
    }
    const clientAddress = `${client.host.includes(':') ? `[${client.host}]` : client.host}:${client.port}`;
    const earlier = await readObserverFile(context.dataDir);
    // Connecting again keeps the port Ollama was moved to, even when OLLAMA_HOST changed since.
    const movedAddress = earlier
      ? new URL(earlier.upstream).host
      : `127.0.0.1:${client.port === 65535 ? client.port - 1 : client.port + 1}`;

    plan.files.push({
      path: join(context.dataDir, OLLAMA_OBSERVER_FILE),
      format: 'json',
      settings: [
        { key: ['listen'], value: clientAddress },
        { key: ['upstream'], value: `http://${movedAddress}` },
      ],
    });
    await planOllamaMove(context, plan, movedAddress);
    plan.notes.push(
      `Restart "tokenwise serve": it then listens on ${clientAddress}, where Ollama's clients connect, records each model call, and forwards everything to Ollama on ${movedAddress}. Local models cost nothing; their tokens and timings are recorded.`,
    );
    return plan;
  },

  async traffic(context) {
    const clients = context.env.OLLAMA_HOST || `127.0.0.1:${OLLAMA_DEFAULT_PORT}`;
    const url = clients.includes('://') ? clients : `http://${clients}`;
    const source = context.env.OLLAMA_HOST ? 'OLLAMA_HOST' : 'default';
    const observer = context.dataDir ? await readObserverFile(context.dataDir) : null;
    if (!observer || !sameAddress(observer.listen, clients)) return { destinations: [{ url, source }], throughTokenwise: false };
    return {
      destinations: [{ url, source: `${source}; the Tokenwise observer there forwards to Ollama on ${observer.upstream}` }],
      throughTokenwise: true,
    };
  },
};

/**
 * Plan how Ollama leaves the clients' port. With Ollama's systemd service and a writable unit directory,
 * a drop-in sets the service's OLLAMA_HOST; without write access connect prints the same drop-in as
 * commands to run with sudo, which disconnect cannot undo. Elsewhere the person starts Ollama on the port.
 */
async function planOllamaMove(context: ConnectContext, plan: TargetPlan, movedAddress: string): Promise<void> {
  const unit = context.platform === 'linux' ? await systemdUnit(context) : null;
  if (!unit) {
    plan.notes.push(
      `Move Ollama to ${movedAddress}: quit it and start it with "OLLAMA_HOST=${movedAddress} ollama serve"; for the macOS app, run "launchctl setenv OLLAMA_HOST ${movedAddress}" and restart the app.`,
    );
    return;
  }

  const dropIn = join(`${unit}.d`, DROP_IN_NAME);
  plan.warnings.push(
    `this moves Ollama's own port: ${unit} gets OLLAMA_HOST=${movedAddress} from ${dropIn}, and programs that call Ollama on that port directly are not recorded`,
  );
  if (await canCreate(dropIn)) {
    plan.blockFiles = [{ path: dropIn, shell: 'systemd', vars: { OLLAMA_HOST: movedAddress } }];
    plan.notes.push('Then restart Ollama: sudo systemctl daemon-reload && sudo systemctl restart ollama');
    return;
  }
  plan.notes.push(
    `${dirname(dropIn)} is not writable by you, so connect does not change it. Move Ollama with: sudo mkdir -p ${dirname(dropIn)} && ` +
      `printf '[Service]\\nEnvironment="OLLAMA_HOST=${movedAddress}"\\n' | sudo tee ${dropIn} && sudo systemctl daemon-reload && sudo systemctl restart ollama ` +
      `(undo: sudo rm ${dropIn}, then the same two systemctl commands).`,
  );
}

/** Find Ollama's systemd unit in the unit directory; null when there is none. */
async function systemdUnit(context: MachineContext): Promise<string | null> {
  const unit = join(context.env.TOKENWISE_SYSTEMD_DIR || DEFAULT_SYSTEMD_DIR, 'ollama.service');
  return (await pathExists(unit)) ? unit : null;
}

/** True when the file can be written: its directory, or the directory that would hold it, is writable. */
async function canCreate(path: string): Promise<boolean> {
  const dir = dirname(path);
  const existing = (await pathExists(dir)) ? dir : dirname(dir);
  try {
    await access(existing, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

async function readObserverFile(dataDir: string): Promise<OllamaObserverFile | null> {
  try {
    const parsed = JSON.parse(await readFile(join(dataDir, OLLAMA_OBSERVER_FILE), 'utf8')) as Partial<OllamaObserverFile>;
    const valid = typeof parsed.listen === 'string' && typeof parsed.upstream === 'string' && URL.canParse(parsed.upstream);
    return valid ? (parsed as OllamaObserverFile) : null;
  } catch {
    return null;
  }
}

/** True when two OLLAMA_HOST-style addresses name the same host and port. */
function sameAddress(left: string, right: string): boolean {
  try {
    const a = parseOllamaListen(left, 'listen');
    const b = parseOllamaListen(right, 'OLLAMA_HOST');
    return a.host === b.host && a.port === b.port;
  } catch {
    return false;
  }
}

function isLoopbackUrl(serverUrl: string): boolean {
  const host = new URL(serverUrl).hostname;
  return host === 'localhost' || host.startsWith('127.') || host === '[::1]';
}
