import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { ApiError, api, apiAll, currentWorkspaceId } from '../api/client.js';
import type { Device, Member, RateLimitObservation } from '../api/types.js';
import { useWorkspace } from '../api/workspace-context.js';
import { ErrorNotice, PageHead, QueryView } from '../components/common.js';
import { ConnectCommands } from '../components/connect-commands.js';
import { formatAgo, formatCount, formatPercent, formatTime } from '../lib/format.js';
import { readGauges } from '../lib/rate-limits.js';
import { useOptimisticFlag } from '../lib/use-optimistic-flag.js';

export function DevicesPage() {
  const { workspace, me } = useWorkspace();
  const queryClient = useQueryClient();
  // The call list caches the devices for their names; here the counts and last-seen times must be fresh.
  const devices = useQuery({
    queryKey: ['devices', currentWorkspaceId()],
    queryFn: async () => ({ devices: await apiAll<Device>('/devices', 'devices') }),
    staleTime: 0,
  });
  const members = useQuery({
    queryKey: ['members', currentWorkspaceId()],
    queryFn: async () => ({ members: await apiAll<Member>('/members', 'members') }),
  });
  const people = new Map((members.data?.members ?? []).map((member) => [member.user_id, member.name]));

  const revoke = useMutation({
    mutationFn: (device: Device) => api(`/devices/${encodeURIComponent(device.id)}/revoke`, { method: 'POST' }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['devices'] }),
  });
  const privacy = useMutation({
    mutationFn: ({ device, on }: { device: Device; on: boolean }) =>
      api(`/devices/${encodeURIComponent(device.id)}`, { method: 'PATCH', body: { privacy_mode: on } }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['devices'] }),
  });
  const canManage = (device: Device) => workspace.role === 'owner' || (me.user !== null && device.user_id === me.user.id);

  return (
    <>
      <PageHead title="Devices" />
      <section className="panel" style={{ marginBottom: 14 }} aria-labelledby="connect-title">
        <h2 id="connect-title">Connect a machine</h2>
        <p className="muted" style={{ marginTop: 0 }}>
          Run this on the machine. It pairs it with this workspace in the browser and points its AI tools here.
        </p>
        <ConnectCommands />
      </section>
      {(revoke.error || privacy.error) && <ErrorNotice error={revoke.error ?? privacy.error} />}
      <QueryView query={devices} what="The device list">
        {(data) =>
          data.devices.length === 0 ? (
            <p className="notice">No device is paired yet. Run the command above on a machine.</p>
          ) : (
            <div className="stack">
              {data.devices.map((device) => (
                <section className="panel" key={device.id} aria-label={`Device ${device.name}`}>
                  <div className="row" style={{ justifyContent: 'space-between' }}>
                    <h2 style={{ margin: 0 }}>
                      {device.name} <span className="muted small">{device.os ?? 'unknown OS'}</span>{' '}
                      {device.revoked_at ? <span className="badge error">revoked</span> : <span className="badge ok">active</span>}
                    </h2>
                    {canManage(device) && !device.revoked_at && (
                      <div className="row">
                        <DevicePrivacy
                          device={device}
                          workspacePrivacy={workspace.privacy_mode}
                          save={(on) => privacy.mutateAsync({ device, on })}
                          busy={privacy.isPending}
                        />
                        <button
                          type="button"
                          className="danger"
                          disabled={revoke.isPending}
                          onClick={() => {
                            if (
                              window.confirm(`Revoke ${device.name}? Its tools' calls are rejected from now on until it is paired again.`)
                            ) {
                              revoke.mutate(device);
                            }
                          }}
                        >
                          Revoke
                        </button>
                      </div>
                    )}
                  </div>
                  <dl className="facts" style={{ marginTop: 10 }}>
                    <dt>Last seen</dt>
                    <dd title={device.last_seen_at ?? undefined}>{formatAgo(device.last_seen_at)}</dd>
                    <dt>Calls</dt>
                    <dd>
                      {device.calls_total === undefined
                        ? 'not available on this server'
                        : `${formatCount(device.calls_total)} in total, ${formatCount(device.calls_24h ?? 0)} in the last 24 h`}
                    </dd>
                    <dt>Person</dt>
                    <dd>{device.user_id ? (people.get(device.user_id) ?? 'a former member') : 'the local owner token'}</dd>
                    <dt>Paired</dt>
                    <dd>{formatTime(device.created_at)}</dd>
                    {device.revoked_at && (
                      <>
                        <dt>Revoked</dt>
                        <dd>{formatTime(device.revoked_at)}</dd>
                      </>
                    )}
                  </dl>
                  <RateLimits device={device} />
                </section>
              ))}
            </div>
          )
        }
      </QueryView>
    </>
  );
}

/** Render a device's privacy-mode switch. With the workspace in privacy mode it shows on and is disabled. */
function DevicePrivacy({
  device,
  workspacePrivacy,
  save,
  busy,
}: {
  device: Device;
  workspacePrivacy: boolean;
  save: (on: boolean) => Promise<unknown>;
  busy: boolean;
}) {
  const [on, setOn] = useOptimisticFlag(device.privacy_mode, save);
  return (
    <label className="check">
      <input
        type="checkbox"
        checked={on || workspacePrivacy}
        disabled={busy || workspacePrivacy}
        onChange={(event) => setOn(event.target.checked)}
      />
      Privacy mode{workspacePrivacy ? ' (on for the whole workspace)' : ''}
    </label>
  );
}

/** The device's latest rate-limit headers, from the device list or else the rate-limits route. */
function RateLimits({ device }: { device: Device }) {
  const fallback = useQuery({
    queryKey: ['rate-limits', currentWorkspaceId()],
    queryFn: async () => ({ rate_limits: await apiAll<RateLimitObservation>('/rate-limits', 'rate_limits') }),
    enabled: device.rate_limits === undefined,
  });
  const observations = device.rate_limits ?? fallback.data?.rate_limits.filter((item) => item.device_id === device.id);
  if (observations === undefined) {
    if (fallback.error instanceof ApiError && fallback.error.notAvailable) {
      return <p className="muted small">Rate limits and plan usage are not available on this server.</p>;
    }
    return null;
  }
  if (observations.length === 0) return <p className="muted small">No rate-limit headers seen from this device's calls yet.</p>;
  return (
    <div className="stack" style={{ marginTop: 10, gap: 10 }}>
      <h3 className="small" style={{ margin: 0 }}>
        Rate limits and plan usage
      </h3>
      {observations.map((observation) => {
        const gauges = readGauges(observation.headers);
        return (
          <div key={`${observation.route}/${observation.tool}`}>
            <div className="small muted">
              {observation.tool} via {observation.route}, reported {formatAgo(observation.observed_at)}
            </div>
            {gauges.length === 0 ? (
              <details>
                <summary className="small">Headers</summary>
                <pre className="code">{JSON.stringify(observation.headers, null, 2)}</pre>
              </details>
            ) : (
              <table className="simple">
                <tbody>
                  {gauges.map((gauge) => (
                    <tr key={gauge.label}>
                      <th style={{ width: '30%' }}>{gauge.label}</th>
                      <td style={{ width: '35%' }}>
                        <meter
                          className="meter"
                          min={0}
                          max={1}
                          low={0.7}
                          high={0.9}
                          optimum={0}
                          value={Math.min(gauge.used, 1)}
                          aria-label={`${gauge.label} used`}
                        />
                      </td>
                      <td className="small">
                        {formatPercent(gauge.used, 0)} used{gauge.detail ? `, ${gauge.detail}` : ''}
                        {gauge.reset ? `, resets ${gauge.reset}` : ''}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </div>
        );
      })}
    </div>
  );
}
