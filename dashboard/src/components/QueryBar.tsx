// The filter input of Discover and Series. A syntax error (the API's 400 with
// `error.column`) is shown under the input, pointing at its column, and the cursor is put
// there.

import { useEffect, useRef, useState } from 'preact/hooks';
import type { ApiError } from '../lib/api';

interface Props {
  id: string;
  label: string;
  value: string;
  onSubmit: (q: string) => void;
  /** A syntax error of the submitted value. */
  error?: ApiError | undefined;
  placeholder?: string;
  /** Submit on Enter with a button (default), or only report edits (forms with their own button). */
  button?: boolean;
  onChange?: (q: string) => void;
}

export const QUERY_HELP =
  'Filters like origin:seville, payload.value > 20, device:probe-* or location:*, combined with and, or, not and parentheses.';

export function QueryBar({ id, label, value, onSubmit, error, placeholder, button = true, onChange }: Props) {
  const [text, setText] = useState(value);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => setText(value), [value]);

  const column = error?.column;
  useEffect(() => {
    // Put the cursor where the parser stopped.
    if (column !== undefined && input.current) {
      const at = Math.max(0, Math.min(value.length, column - 1));
      input.current.focus();
      input.current.setSelectionRange(at, Math.min(value.length, at + 1));
    }
  }, [error]);

  const errorId = `${id}-error`;
  const helpId = `${id}-help`;
  const submit = (event: Event) => {
    event.preventDefault();
    onSubmit(text.trim());
  };
  const field = (
    <div class="query-field">
      <label for={id} class="sr-only">
        {label}
      </label>
      <input
        ref={input}
        id={id}
        type="search"
        class="query-input"
        spellcheck={false}
        autocomplete="off"
        placeholder={placeholder ?? 'Filter, e.g. origin:seville and payload.value > 20 (empty: everything)'}
        value={text}
        onInput={(e) => {
          setText(e.currentTarget.value);
          onChange?.(e.currentTarget.value);
        }}
        onKeyDown={(e) => {
          if (!button && e.key === 'Enter') submit(e);
        }}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${errorId} ${helpId}` : helpId}
      />
      <span id={helpId} class="sr-only">
        {QUERY_HELP}
      </span>
      {error && <SyntaxError id={errorId} query={value} error={error} />}
    </div>
  );
  if (!button) return field;
  return (
    <form class="query-bar" role="search" onSubmit={submit}>
      {field}
      <button type="submit" class="primary">
        Search
      </button>
    </form>
  );
}

export function SyntaxError({ id, query, error }: { id: string; query: string; error: ApiError }) {
  const column = error.column;
  return (
    <div id={id} class="query-error" role="alert">
      {column !== undefined ? (
        <>
          <pre class="caret" aria-hidden="true">
            <code>
              {query}
              {'\n'}
              {' '.repeat(Math.max(0, column - 1))}^
            </code>
          </pre>
          <p>
            <strong>Syntax error at column {column}:</strong> {error.reason}
          </p>
        </>
      ) : (
        <p>{error.message}</p>
      )}
    </div>
  );
}
