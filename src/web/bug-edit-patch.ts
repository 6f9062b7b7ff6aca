/**
 * Turns the bug page's change form into a bug patch: only the fields the user changed (the submitted
 * value differs from its `was_` value), each checked and turned into what `updateBug` takes. Problems
 * come back per field, to be shown beside it.
 */

/** The fields of a bug the change form may edit (besides the workflow step and the comment). */
export type EditField =
  | 'summary'
  | 'product_id'
  | 'version_id'
  | 'component_id'
  | 'severity'
  | 'priority'
  | 'assignee'
  | 'confidential';

/** Every editable field, in form order. */
export const EDIT_FIELDS: EditField[] = [
  'summary',
  'product_id',
  'version_id',
  'component_id',
  'severity',
  'priority',
  'assignee',
  'confidential',
];

type Form = Record<string, string | undefined>;

/** The field part of a bug patch, as `updateBug` takes it. */
export interface BugPatchInput {
  summary?: string;
  productId?: number;
  versionId?: number;
  componentId?: number;
  severity?: string;
  priority?: string;
  assigneeId?: number | null;
  confidential?: boolean;
}

/** The submitted value of a field as the form means it (an unchecked box sends nothing: ''). */
export function submitted(body: Form, f: EditField): string | undefined {
  if (body[`was_${f}`] === undefined) return undefined; // the form did not offer this field
  if (f === 'confidential') return body['confidential'] === '1' ? '1' : '';
  return body[f];
}

/** The fields whose submitted value differs from the value the form was loaded with. */
export function changedFields(body: Form): EditField[] {
  return EDIT_FIELDS.filter((f) => {
    const v = submitted(body, f);
    return v !== undefined && v !== body[`was_${f}`];
  });
}

const ID = /^[1-9]\d{0,9}$/;

/**
 * The patch for the changed fields. Moving to another product sends its version and component too,
 * so the service can say which of them does not belong to it.
 */
export async function readEditPatch(
  body: Form,
  opts: {
    severities: string[];
    priorities: string[];
    /** The id of an active user with this e-mail address. */
    userByEmail: (email: string) => Promise<number | undefined>;
  },
): Promise<{ patch: BugPatchInput; errors: Form }> {
  const changed = new Set(changedFields(body));
  if (changed.has('product_id')) {
    changed.add('version_id');
    changed.add('component_id');
  }
  const patch: BugPatchInput = {};
  const errors: Form = {};
  const value = (f: EditField) => (submitted(body, f) ?? '').trim();
  if (changed.has('summary')) {
    if (value('summary').length > 255)
      errors['summary'] = 'A summary has at most 255 characters; put the rest in a comment.';
    else patch.summary = value('summary');
  }
  const ids: [EditField, 'productId' | 'versionId' | 'componentId', string][] = [
    ['product_id', 'productId', 'product'],
    ['version_id', 'versionId', 'version'],
    ['component_id', 'componentId', 'component'],
  ];
  for (const [f, key, what] of ids) {
    if (!changed.has(f)) continue;
    if (ID.test(value(f))) patch[key] = Number(value(f));
    else errors[f] = `Choose a ${what} from the list.`;
  }
  if (changed.has('severity')) {
    if (opts.severities.includes(value('severity'))) patch.severity = value('severity');
    else errors['severity'] = 'Choose a severity from the list.';
  }
  if (changed.has('priority')) {
    if (opts.priorities.includes(value('priority'))) patch.priority = value('priority');
    else errors['priority'] = 'Choose a priority from the list.';
  }
  if (changed.has('assignee')) {
    const email = value('assignee');
    if (!email) patch.assigneeId = null;
    else {
      const id = email.length <= 254 ? await opts.userByEmail(email) : undefined;
      if (id === undefined) errors['assignee'] = `No active user has the e-mail address ${email}.`;
      else patch.assigneeId = id;
    }
  }
  if (changed.has('confidential')) patch.confidential = value('confidential') === '1';
  return { patch, errors };
}
