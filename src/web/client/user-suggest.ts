/// <reference lib="dom" />
/**
 * Suggestions for a field that takes a person's e-mail address (the assignee on the bug page): as staff
 * type part of a name or address, the field's <datalist> is filled from `GET /api/v1/users?q=` with the
 * active accounts that match. Without JavaScript, or when the request fails, the field is a plain
 * e-mail field and works the same.
 */

interface ListedUser {
  name: string;
  email?: string;
  disabled?: boolean;
}

/** Wires one input that has a `list` attribute naming an (initially empty) <datalist>. */
export function wireUserSuggestions(input: HTMLInputElement): void {
  const list = document.getElementById(input.getAttribute('list') ?? '');
  if (!(list instanceof HTMLDataListElement)) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let asked = '';
  let pending: AbortController | undefined;
  const suggest = async () => {
    const q = input.value.trim();
    if (q.length < 2 || q === asked || q.length > 100) return;
    asked = q;
    pending?.abort();
    const mine = new AbortController();
    pending = mine;
    try {
      const res = await fetch(`/api/v1/users?limit=10&q=${encodeURIComponent(q)}`, {
        headers: { accept: 'application/json' },
        credentials: 'same-origin',
        signal: mine.signal,
      });
      if (!res.ok) return;
      const { users } = (await res.json()) as { users: ListedUser[] };
      if (pending !== mine) return;
      list.replaceChildren(
        ...users
          .filter((u) => u.email && !u.disabled)
          .map((u) => {
            const option = document.createElement('option');
            option.value = u.email ?? '';
            option.label = u.name;
            return option;
          }),
      );
    } catch {
      // Aborted by newer typing, or offline: the field still takes a typed address.
    }
  };
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, 150);
  });
}
