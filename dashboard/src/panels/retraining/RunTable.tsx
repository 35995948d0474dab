import { fmtDateTime, fmtDuration } from "../../format";
import type { LoopState, Run } from "../../protocol";

function Stages({ stages }: { stages: Run["stages"] }) {
  const entries = Object.entries(stages) as [LoopState, number][];
  if (entries.length === 0) return <>—</>;
  return (
    <>
      {entries.map(([stage, seconds]) => (
        <span key={stage} className="stage">
          {stage.toLowerCase()} {fmtDuration(seconds)}
        </span>
      ))}
    </>
  );
}

/** Newest first; click a row to read its log. */
export function RunTable({ runs, selected, onSelect }: { runs: readonly Run[]; selected: string | null; onSelect: (id: string) => void }) {
  return (
    <table className="table run-table" data-testid="run-table">
      <thead>
        <tr>
          <th>Run</th>
          <th>Trigger</th>
          <th>State</th>
          <th>Outcome</th>
          <th>Stages</th>
          <th>Started</th>
          <th>Finished</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((run) => (
          <tr key={run.id} data-testid={`run-row-${run.id}`} className={run.id === selected ? "selected" : ""} onClick={() => onSelect(run.id)}>
            <td>{run.id}</td>
            <td title={run.trigger.reason}>
              {run.trigger.kind}
              {run.attached_triggers > 0 ? ` (+${run.attached_triggers})` : ""}
            </td>
            <td>{run.state}</td>
            <td title={run.reason ?? ""} className={run.outcome ? `outcome-${run.outcome}` : ""}>
              {run.outcome ?? "running"}
            </td>
            <td>
              <Stages stages={run.stages} />
            </td>
            <td>{fmtDateTime(run.started_at)}</td>
            <td>{fmtDateTime(run.finished_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
