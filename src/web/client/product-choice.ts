/// <reference lib="dom" />
/**
 * Browser side of a product / version / component choice (the file-a-bug form and the bug page): when
 * the product changes, its versions and components replace the old ones without a page reload, fetched
 * from the JSON API (which offers only what this viewer may see). Without JavaScript the form's own
 * "show its versions" button does the same through the server; with it, that button goes away.
 */

interface ProductJson {
  name: string;
  versions: { id: number; name: string }[];
  components: { id: number; name: string }[];
}

function fill(select: HTMLSelectElement, options: { id: number; name: string }[], placeholder: string) {
  const previous = select.value;
  select.replaceChildren(
    ...(options.length ? options : [{ id: 0, name: placeholder }]).map(
      (o) => new Option(o.name, o.id ? String(o.id) : ''),
    ),
  );
  // Keep a choice that is still valid (a product re-chosen), otherwise the first option.
  if (options.some((o) => String(o.id) === previous)) select.value = previous;
}

/** Wires the product select of `form` to its version and component selects. */
export function wireProductChoice(form: HTMLFormElement): void {
  const product = form.querySelector<HTMLSelectElement>('select[name="product_id"]');
  const version = form.querySelector<HTMLSelectElement>('select[name="version_id"]');
  const component = form.querySelector<HTMLSelectElement>('select[name="component_id"]');
  const status = form.querySelector<HTMLElement>('[data-product-status]');
  if (!product || !version || !component) return;
  // Removed rather than hidden: the first submit button is what Enter in a text field presses.
  for (const b of form.querySelectorAll('[data-nojs]')) b.remove();
  // The product the versions and components on the page were rendered for. A choice made before this
  // script ran (a slow load, or the browser restoring the form on Back) fired no handler: catch up below.
  const rendered = [...product.options].find((o) => o.defaultSelected) ?? product.options[0];
  let latest = 0;
  const say = (text: string) => {
    if (status) status.textContent = text;
  };
  product.addEventListener('change', async () => {
    const id = product.value;
    const seq = ++latest;
    if (!/^\d+$/.test(id)) {
      fill(version, [], 'Choose a product first');
      fill(component, [], 'Choose a product first');
      return;
    }
    version.disabled = component.disabled = true;
    say('Loading versions and components…');
    try {
      const res = await fetch(`/api/v1/products/${id}`, {
        headers: { accept: 'application/json' },
        credentials: 'same-origin',
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const p = (await res.json()) as ProductJson;
      if (seq !== latest) return; // a later choice won
      fill(version, p.versions, 'No versions');
      fill(component, p.components, 'No components');
      say(`Showing the versions and components of ${p.name}.`);
    } catch {
      if (seq === latest) say('Could not load the versions of that product; reload the page and try again.');
    } finally {
      if (seq === latest) version.disabled = component.disabled = false;
    }
  });
  if (product.value !== (rendered?.value ?? '')) product.dispatchEvent(new Event('change'));
}
