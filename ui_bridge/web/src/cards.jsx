// How Citadel's tool calls, state and approvals look on the page.

function parse(value) {
  if (typeof value !== "string") return value ?? null;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

export function SearchCard({ args, result, status }) {
  const found = parse(result);
  const sources = found?.sources ?? [];
  return (
    <div className="card search" data-testid="search-card">
      <div className="card-title">
        Searched <b>{args?.collection ?? "documents"}</b> for “{args?.query}”
        {status !== "complete" ? " …" : ""}
      </div>
      {found?.status === "nothing_relevant" && <div className="muted">Nothing relevant found.</div>}
      {found?.status === "no_collection" && <div className="muted">No such collection.</div>}
      <ol className="sources">
        {sources.map((source) => (
          <li key={source.id} data-testid="search-source">
            <span className="source-id">[{source.id}]</span> <b>{source.title}</b>{" "}
            <span className="score">{Number(source.score).toFixed(2)}</span>
            <div className="snippet">{source.text}</div>
          </li>
        ))}
      </ol>
    </div>
  );
}

export function RouteCard({ result }) {
  const decision = parse(result);
  if (!decision) return null;
  return (
    <div className="card route" data-testid="route-card" title={decision.reason}>
      → {decision.specialist}
    </div>
  );
}

export function StepCard({ name, args, result }) {
  const done = parse(result);
  return (
    <div className="card step" data-testid="step-card">
      <div className="card-title">
        {name.replace("workflow_", "")} {args?.query ?? args?.prompt ?? ""}
      </div>
      {done?.text && <pre className="snippet">{done.text}</pre>}
    </div>
  );
}

export function Approval({ request, onAnswer }) {
  const raw = request?.metadata?.langgraph?.raw ?? request ?? {};
  return (
    <div className="card approval" data-testid="approval">
      <div className="card-title">Approval needed</div>
      <p>{request?.message ?? raw.message}</p>
      <button type="button" data-testid="approve" onClick={() => onAnswer("approve")}>
        Approve
      </button>
      <button type="button" data-testid="reject" onClick={() => onAnswer("reject")}>
        Reject
      </button>
    </div>
  );
}

export function StatePanel({ graph, state, highlighted }) {
  const progress = state?.progress;
  return (
    <section className="state" data-testid="state-panel">
      <h2>State</h2>
      {state?.specialist && (
        <p data-testid="specialist">
          Specialist: <b>{state.specialist}</b>
          <br />
          <small>{state.route_reason}</small>
        </p>
      )}
      {progress && (
        <p data-testid="progress">
          Progress: {progress.completed}/{progress.total}
          {progress.current ? ` — ${progress.current}` : ""}
          <progress value={progress.completed} max={progress.total || 1} />
        </p>
      )}
      {state?.status && graph === "workflow" && <p>Status: {state.status}</p>}
      {state?.sources?.length > 0 && (
        <>
          <h3>Sources</h3>
          <ul className="sources">
            {state.sources.map((source) => (
              <li key={source.id} className={source.id === highlighted ? "highlight" : ""}>
                [{source.id}] {source.title} ({Number(source.score).toFixed(2)})
              </li>
            ))}
          </ul>
        </>
      )}
      {state?.sections?.length > 0 && (
        <>
          <h3>Sections</h3>
          <ol>
            {state.sections.map((section) => (
              <li key={section.index}>
                {section.title} <small>{section.content_type ?? ""}</small>
                {section.finding ? " ✓" : ""}
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}
