// Small shared pieces: the state badge, time displays and the confirmation dialog.
import { useEffect, useId, useRef, type ReactNode } from 'react';
import { useNow } from './clock';
import { formatRelative, formatTimestamp, formatTtl } from './time';
import { ENV_STATES } from './types';

export function StateBadge({ state, reason }: { state: string; reason?: string }) {
  const known = (ENV_STATES as readonly string[]).includes(state);
  return (
    <span className={`badge badge-${known ? state : 'unknown'}`} data-state={state} title={reason || undefined}>
      <span className="badge-dot" aria-hidden="true" />
      {state}
    </span>
  );
}

/** The time left until `expiresAt`, ticking every second. */
export function Countdown({ expiresAt }: { expiresAt: string | null | undefined }) {
  const now = useNow();
  const ttl = formatTtl(expiresAt, now);
  if (!expiresAt) return <span className="ttl ttl-none">{ttl.text}</span>;
  return (
    <time className={`ttl ttl-${ttl.tone}`} dateTime={expiresAt} title={`Expires ${formatTimestamp(expiresAt)}`}>
      {ttl.text}
    </time>
  );
}

/** "3 min ago", with the exact time as a tooltip. */
export function RelativeTime({ iso }: { iso: string | null | undefined }) {
  const now = useNow();
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={formatTimestamp(iso)}>
      {formatRelative(iso, now)}
    </time>
  );
}

export function ExternalLink({ href, children }: { href: string; children: ReactNode }) {
  return (
    <a href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  );
}

export function pullRequestUrl(project: string, pr: number): string | null {
  if (!project || !Number.isInteger(pr) || pr <= 0) return null;
  return `https://github.com/${project.split('/').map(encodeURIComponent).join('/')}/pull/${pr}`;
}

interface ConfirmDialogProps {
  title: string;
  confirmLabel: string;
  danger?: boolean;
  busy: boolean;
  error: string | null;
  onConfirm: () => void;
  onCancel: () => void;
  children: ReactNode;
}

/**
 * A modal confirmation (the native <dialog>: focus is trapped, Escape cancels). Mount it to open
 * it; unmount it to close it. Focus starts on Cancel, so Enter never confirms by accident.
 */
export function ConfirmDialog(props: ConfirmDialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const { busy, onCancel } = props;
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => {
      if (dialog?.open) dialog.close();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onCancel();
      }}
    >
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!busy) props.onConfirm();
        }}
      >
        <h2 id={titleId}>{props.title}</h2>
        {props.children}
        {props.error && (
          <p className="alert alert-error" role="alert">
            {props.error}
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" className="button" autoFocus onClick={onCancel} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className={props.danger ? 'button button-danger' : 'button button-primary'} disabled={busy}>
            {busy ? 'Working…' : props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
