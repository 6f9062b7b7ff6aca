/// <reference lib="dom" />
/**
 * An admin product's page: the default-assignee fields of its components suggest matching people as the
 * admin types (the page works the same without this script).
 */
import { wireUserSuggestions } from './user-suggest.ts';

for (const input of document.querySelectorAll<HTMLInputElement>('input[list="user-suggestions"]')) {
  wireUserSuggestions(input);
}
