import { Component, type ErrorInfo, type ReactNode } from "react";

interface Props {
  /** The panel's name, in the message. */
  name: string;
  children: ReactNode;
}

interface State {
  error: Error | null;
}

/**
 * Keeps one panel's failure in that panel: a render error, or a lazily loaded panel whose
 * code cannot be fetched (the server is down), shows a message and a retry button there,
 * while the header, the tabs and the connection keep working.
 */
export class PanelBoundary extends Component<Props, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: unknown): State {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error(`the ${this.props.name} panel failed`, error, info.componentStack);
  }

  render() {
    const { error } = this.state;
    if (error === null) return this.props.children;
    return (
      <section className="panel panel-error" role="alert" data-testid="panel-error">
        <h2>The {this.props.name} panel failed</h2>
        <p className="muted">{error.message || error.name}</p>
        <button type="button" onClick={() => this.setState({ error: null })}>
          Try again
        </button>
      </section>
    );
  }
}
