/// <reference lib="dom" />
/**
 * The bug page: moving a bug to another product offers only that product's versions and components,
 * without a reload; the resolution and duplicate-of fields show only when resolving; the assignee field
 * suggests matching people as staff type.
 */
import { wireProductChoice } from './product-choice.ts';
import { wireUserSuggestions } from './user-suggest.ts';

const form = document.getElementById('bug-change-form');
if (form instanceof HTMLFormElement) {
  wireProductChoice(form);
  const assignee = form.querySelector<HTMLInputElement>('input[name="assignee"][list]');
  if (assignee) wireUserSuggestions(assignee);
  const status = form.querySelector<HTMLSelectElement>('select[name="status"]');
  const resolving = form.querySelector<HTMLElement>('[data-resolving]');
  if (status && resolving) {
    const current = resolving.dataset['current'];
    const show = () => {
      resolving.hidden = !(status.value === 'RESOLVED' || (status.value === '' && current === 'RESOLVED'));
    };
    status.addEventListener('change', show);
    show();
  }
}
