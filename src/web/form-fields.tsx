/**
 * Form controls shared by the pages beyond layout.tsx's text `Field`: selects, text areas, checkboxes,
 * each labelled and with its error beside it (announced through `aria-describedby`), and the summary of
 * a refused form announced to screen readers.
 */

/**
 * Escapes text for an attribute value. @kitajs/html escapes only `"` there, so a typed `&amp;` would be
 * read back by the browser as `&`: `&`, `<` and `>` are escaped here (and `"` is still left to it).
 */
export function attr(text: string | undefined): string {
  return (text ?? '').replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/** What a submitted form holds, and the errors per field of a refused one. */
export type Form = Record<string, string | undefined>;

/** The error paragraph of a field, or nothing. */
export function FieldError(props: { id: string; error?: string | undefined }) {
  return props.error ? (
    <p id={`${props.id}-error`} class="field-error" safe>
      {props.error}
    </p>
  ) : (
    ''
  );
}

const described = (id: string, error: string | undefined) =>
  error ? { 'aria-invalid': 'true', 'aria-describedby': `${id}-error` } : {};

/** A labelled select; `id` defaults to `f-<name>`. */
export function Select(props: {
  name: string;
  label: string;
  options: { value: string; label: string }[];
  value?: string | undefined;
  error?: string | undefined;
  id?: string;
}) {
  const id = props.id ?? `f-${props.name}`;
  return (
    <>
      <label for={id} safe>
        {props.label}
      </label>
      <select id={id} name={props.name} {...described(id, props.error)}>
        {props.options.map((o) => (
          <option value={o.value} selected={o.value === props.value} safe>
            {o.label}
          </option>
        ))}
      </select>
      <FieldError id={id} error={props.error} />
    </>
  );
}

/** A labelled text area keeping what was typed. */
export function TextArea(props: {
  name: string;
  label: string;
  value?: string | undefined;
  error?: string | undefined;
  rows?: number;
}) {
  const id = `f-${props.name}`;
  return (
    <>
      <label for={id} safe>
        {props.label}
      </label>
      <textarea id={id} name={props.name} rows={String(props.rows ?? 6)} {...described(id, props.error)} safe>
        {props.value ?? ''}
      </textarea>
      <FieldError id={id} error={props.error} />
    </>
  );
}

/** A checkbox with its label beside it; sends `1` when checked. */
export function Checkbox(props: {
  name: string;
  label: string;
  checked: boolean;
  error?: string | undefined;
  id?: string;
}) {
  const id = props.id ?? `f-${props.name}`;
  return (
    <>
      <label for={id} class="check">
        <input
          type="checkbox"
          id={id}
          name={props.name}
          value="1"
          checked={props.checked}
          {...described(id, props.error)}
        />{' '}
        <span safe>{props.label}</span>
      </label>
      <FieldError id={id} error={props.error} />
    </>
  );
}

/** The CSRF token every form carries. */
export function Csrf(props: { token: string }) {
  return <input type="hidden" name="_csrf" value={props.token} />;
}

/**
 * The announcement of a refused form (role=alert: read out at once): what went wrong, pointing at the
 * fields marked beside them. Nothing when the form was accepted.
 */
export function ErrorSummary(props: { errors: Form; what: string }) {
  const messages = Object.values(props.errors).filter((m): m is string => Boolean(m));
  if (messages.length === 0) return '';
  return (
    <div class="alert" role="alert">
      <p safe>{`${props.what}:`}</p>
      <ul>
        {messages.map((m) => (
          <li safe>{m}</li>
        ))}
      </ul>
    </div>
  );
}
