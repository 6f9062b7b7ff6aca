/**
 * The bug page's change form: the fields this viewer may edit (summary, product / version / component,
 * severity, priority, assignee, confidential), the workflow step (status, resolution, duplicate-of) and a
 * comment, all in one submit through `updateBug` and its mid-air collision check.
 *
 * Each editable field also carries the value it was loaded with (`was_<field>`), so only what the user
 * actually changed is sent: re-applying an edit after a mid-air collision never undoes somebody else's
 * change to a field the user did not touch.
 */
import type { BugPatchInput, EditField } from './bug-edit-patch.ts';
import { attr, Checkbox, Csrf, FieldError, type Form, Select } from './form-fields.tsx';
import { Field } from './layout.tsx';

/** A product as the form offers it. */
export interface ProductChoice {
  id: number;
  name: string;
  versions: { id: number; name: string }[];
  components: { id: number; name: string }[];
}

export type { BugPatchInput, EditField };

/** What the change form is built from. */
export interface ChangeFormProps {
  bugId: number;
  csrf: string;
  rowVersion: number;
  /** Status now, and the steps this viewer may take from it. */
  status: string;
  statuses: string[];
  resolutions: string[];
  /** The fields this viewer may edit. */
  editable: EditField[];
  /** The values the form was loaded with (hidden `was_` fields) and the values it shows. */
  was: Form;
  values: Form;
  errors: Form;
  /** Products to move the bug to (staff), with the chosen product's versions and components. */
  products: ProductChoice[];
  severities: string[];
  priorities: string[];
}

const opts = (xs: string[]) => xs.map((x) => ({ value: x, label: x }));

/** The one form that changes a bug. */
export function ChangeForm(props: ChangeFormProps) {
  const { values, errors, editable, was } = props;
  const may = (f: EditField) => editable.includes(f);
  const productId = values['product_id'] ?? was['product_id'];
  const product = props.products.find((p) => String(p.id) === productId);
  return (
    <form method="post" action={`/bugs/${props.bugId}/change`} id="bug-change-form" class="card wide">
      <Csrf token={props.csrf} />
      <input type="hidden" name="row_version" value={String(props.rowVersion)} />
      {editable.map((f) => (
        <input type="hidden" name={`was_${f}`} value={attr(was[f])} />
      ))}
      {editable.length ? (
        <fieldset>
          <legend>Fields</legend>
          {may('summary') ? (
            <Field name="summary" label="Summary" value={values['summary']} error={errors['summary']} />
          ) : (
            ''
          )}
          {may('product_id') ? (
            <>
              <Select
                name="product_id"
                label="Product"
                value={productId}
                options={props.products.map((p) => ({ value: String(p.id), label: p.name }))}
                error={errors['product_id']}
              />
              <button type="submit" name="step" value="product" class="secondary" data-nojs>
                Show its versions and components
              </button>
              <p class="muted" aria-live="polite" data-product-status></p>
              <Select
                name="version_id"
                label="Version"
                value={values['version_id']}
                options={(product?.versions ?? []).map((v) => ({ value: String(v.id), label: v.name }))}
                error={errors['version_id']}
              />
              <Select
                name="component_id"
                label="Component"
                value={values['component_id']}
                options={(product?.components ?? []).map((c) => ({ value: String(c.id), label: c.name }))}
                error={errors['component_id']}
              />
            </>
          ) : (
            ''
          )}
          {may('severity') ? (
            <Select
              name="severity"
              label="Severity"
              value={values['severity']}
              options={opts(props.severities)}
              error={errors['severity']}
            />
          ) : (
            ''
          )}
          {may('priority') ? (
            <Select
              name="priority"
              label="Priority"
              value={values['priority']}
              options={opts(props.priorities)}
              error={errors['priority']}
            />
          ) : (
            ''
          )}
          {may('assignee') ? (
            <>
              <label for="f-assignee">Assignee (e-mail address; empty for nobody)</label>
              <input
                id="f-assignee"
                name="assignee"
                type="email"
                autocomplete="off"
                list="assignee-suggestions"
                value={attr(values['assignee'])}
                aria-invalid={errors['assignee'] ? 'true' : undefined}
                aria-describedby={errors['assignee'] ? 'f-assignee-error' : undefined}
              />
              {/* Filled as staff type (src/web/client/user-suggest.ts). */}
              <datalist id="assignee-suggestions"></datalist>
              <FieldError id="f-assignee" error={errors['assignee']} />
            </>
          ) : (
            ''
          )}
          {may('confidential') ? (
            <Checkbox
              name="confidential"
              label="Confidential: only staff and the people on the CC list may see it"
              checked={values['confidential'] === '1'}
              error={errors['confidential']}
            />
          ) : (
            ''
          )}
        </fieldset>
      ) : (
        ''
      )}
      {props.statuses.length ? (
        <fieldset>
          <legend>Workflow</legend>
          <Select
            name="status"
            label="Status"
            value={values['status']}
            options={[
              { value: '', label: `${props.status} (no change)` },
              ...props.statuses.map((s) => ({ value: s, label: s })),
            ]}
            error={errors['status']}
          />
          <div data-resolving data-current={props.status}>
            <Select
              name="resolution"
              label="Resolution (when resolving)"
              value={values['resolution']}
              options={[{ value: '', label: '—' }, ...opts(props.resolutions)]}
              error={errors['resolution']}
            />
            <label for="f-duplicate_of">Duplicate of bug (for DUPLICATE)</label>
            <input
              id="f-duplicate_of"
              name="duplicate_of"
              type="text"
              inputmode="numeric"
              value={attr(values['duplicate_of'])}
              aria-invalid={errors['duplicate_of'] ? 'true' : undefined}
              aria-describedby={errors['duplicate_of'] ? 'f-duplicate_of-error' : undefined}
            />
            <FieldError id="f-duplicate_of" error={errors['duplicate_of']} />
          </div>
        </fieldset>
      ) : (
        ''
      )}
      <label for="f-comment">Comment</label>
      <textarea
        id="f-comment"
        name="comment"
        rows="5"
        aria-invalid={errors['comment'] ? 'true' : undefined}
        aria-describedby={errors['comment'] ? 'f-comment-error' : undefined}
        safe
      >
        {values['comment'] ?? ''}
      </textarea>
      <FieldError id="f-comment" error={errors['comment']} />
      <button type="submit">Save changes</button>
    </form>
  );
}
