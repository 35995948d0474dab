import { useState } from "react";
import { NoData } from "../components/NoData";
import { ShadowNotes } from "../components/ShadowNotes";
import { fmtTime } from "../format";
import { useDashboard } from "../store";
import { RunTable } from "./retraining/RunTable";
import { StateDiagram } from "./retraining/StateDiagram";

const EMPTY_LOG: readonly string[] = [];

export function RetrainingPanel() {
  const loop = useDashboard((s) => s.state?.loop ?? null);
  const runs = useDashboard((s) => s.runs);
  const [chosen, setChosen] = useState<string | null>(null);
  // Until a row is clicked, follow the live run, else the newest.
  const selected = chosen ?? loop?.run_id ?? runs[0]?.id ?? null;
  const log = useDashboard((s) => (selected === null ? EMPTY_LOG : (s.logs[selected] ?? EMPTY_LOG)));
  const shadow = runs.find((run) => run.id === selected)?.evidence.shadow ?? null;

  return (
    <section className="panel">
      <StateDiagram active={loop?.state ?? null} />
      <p className="muted">
        {loop === null ? "no state yet" : `loop ${loop.state}`}
        {loop?.run_id ? ` · run ${loop.run_id}` : ""}
        {loop?.cooldown_until ? ` · cooldown until ${fmtTime(loop.cooldown_until)}` : ""}
      </p>
      <h2>Runs</h2>
      {runs.length === 0 ? <NoData what="no runs yet" /> : <RunTable runs={runs} selected={selected} onSelect={setChosen} />}
      {shadow && <ShadowNotes shadow={shadow} />}
      <h2>Log{selected ? ` of ${selected}` : ""}</h2>
      {log.length === 0 ? <NoData what="no log lines" /> : <pre className="log" data-testid="run-log">{log.join("\n")}</pre>}
    </section>
  );
}
