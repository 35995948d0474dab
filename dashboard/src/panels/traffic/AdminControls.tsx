import { useState } from "react";
import { ApiError, admin, useAdminToken } from "../../api";
import { TRAFFIC_MODES, type Traffic, type TrafficMode } from "../../protocol";

type Call = (label: string, call: (token: string) => Promise<string>) => void;

function TrafficForm({ traffic, disabled, run }: { traffic: Traffic; disabled: boolean; run: Call }) {
  const [mode, setMode] = useState<TrafficMode>(traffic.mode);
  const [weight, setWeight] = useState(String(traffic.weight));
  const [shadow, setShadow] = useState(String(traffic.shadow_fraction));
  const apply = () =>
    run("traffic", async (token) => {
      await admin.setTraffic(token, { mode, weight: Number(weight), shadow_fraction: Number(shadow) });
      return `traffic set to ${mode}`;
    });

  return (
    <fieldset disabled={disabled} className="admin-row">
      <label>
        mode
        <select data-testid="admin-mode" value={mode} onChange={(e) => setMode(e.target.value as TrafficMode)}>
          {TRAFFIC_MODES.map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>
      </label>
      <label>
        weight
        <input data-testid="admin-weight" type="number" min={0} max={1} step={0.05} value={weight} onChange={(e) => setWeight(e.target.value)} />
      </label>
      <label>
        shadow fraction
        <input data-testid="admin-shadow-fraction" type="number" min={0} max={1} step={0.05} value={shadow} onChange={(e) => setShadow(e.target.value)} />
      </label>
      <button data-testid="admin-apply-traffic" onClick={apply}>
        Apply split
      </button>
    </fieldset>
  );
}

function Actions({ candidate, disabled, run }: { candidate: number | null; disabled: boolean; run: Call }) {
  const [reason, setReason] = useState("");
  const why = () => reason || "from the dashboard";
  return (
    <fieldset disabled={disabled} className="admin-row">
      <label>
        reason
        <input data-testid="admin-reason" value={reason} placeholder="from the dashboard" onChange={(e) => setReason(e.target.value)} />
      </label>
      <button
        data-testid="admin-promote"
        disabled={candidate === null}
        onClick={() =>
          candidate !== null &&
          run("promote", async (token) => {
            await admin.promote(token, candidate, why());
            return `v${candidate} promoted`;
          })
        }
      >
        Promote candidate{candidate !== null ? ` v${candidate}` : ""}
      </button>
      <button
        data-testid="admin-rollback"
        onClick={() =>
          run("rollback", async (token) => {
            await admin.rollback(token, why());
            return "rolled back";
          })
        }
      >
        Roll back
      </button>
      <button
        data-testid="admin-retrain"
        onClick={() =>
          run("retrain", async (token) => {
            const { run_id, attached } = await admin.retrain(token, why());
            return attached ? `attached to running ${run_id}` : `retrain started: ${run_id}`;
          })
        }
      >
        Retrain
      </button>
    </fieldset>
  );
}

function describeError(error: unknown): string {
  if (error instanceof ApiError) return `${error.status}: ${error.message}${error.field ? ` (${error.field})` : ""}`;
  return error instanceof Error ? error.message : String(error);
}

/** Admin actions, disabled until a token is entered; the server's answer is shown as is. */
export function AdminControls({ traffic, candidate }: { traffic: Traffic | null; candidate: number | null }) {
  const [token, setToken] = useAdminToken();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const disabled = token === "" || busy;

  const run: Call = (label, call) => {
    setBusy(true);
    setResult(null);
    call(token)
      .then((text) => setResult({ ok: true, text }))
      .catch((error: unknown) => setResult({ ok: false, text: `${label} failed: ${describeError(error)}` }))
      .finally(() => setBusy(false));
  };

  return (
    <div className="admin">
      <label className="admin-row">
        admin token
        <input data-testid="admin-token" type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} />
      </label>
      {traffic && <TrafficForm traffic={traffic} disabled={disabled} run={run} />}
      <Actions candidate={candidate} disabled={disabled} run={run} />
      {result && (
        <p className={result.ok ? "admin-ok" : "admin-error"} data-testid={result.ok ? "admin-message" : "admin-error"} role={result.ok ? "status" : "alert"}>
          {result.text}
        </p>
      )}
    </div>
  );
}
