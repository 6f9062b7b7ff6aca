/// <reference lib="dom" />
/**
 * The file-a-bug page: as the summary is typed, up to five existing bugs of the chosen product with
 * similar summaries are listed under it (from GET /api/v1/search/similar, which offers only bugs this
 * viewer may see), so a duplicate is found before it is filed. Without JavaScript nothing is shown.
 */

interface SimilarJson {
  bugs: { id: number; summary: string; status: string; resolution: string | null }[];
}

const DELAY_MS = 250;

function wire(box: HTMLElement): void {
  const form = box.closest('form') ?? document.getElementById('file-bug-form');
  if (!(form instanceof HTMLFormElement)) return;
  const summary = form.querySelector<HTMLInputElement>('input[name="summary"]');
  const product = form.querySelector<HTMLInputElement | HTMLSelectElement>('[name="product_id"]');
  if (!summary || !product) return;
  box.setAttribute('aria-live', 'polite');
  let timer: ReturnType<typeof setTimeout> | undefined;
  let latest = 0;
  let shownFor = '';

  const show = (bugs: SimilarJson['bugs']) => {
    if (!bugs.length) {
      box.replaceChildren();
      return;
    }
    const heading = document.createElement('p');
    heading.textContent = 'Possibly already reported:';
    const list = document.createElement('ul');
    for (const b of bugs) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = `/bugs/${b.id}`;
      a.target = '_blank';
      a.rel = 'noopener';
      a.textContent = `#${b.id} ${b.summary}`;
      const state = document.createElement('span');
      state.className = 'muted';
      state.textContent = ` (${b.resolution ? `${b.status} ${b.resolution}` : b.status})`;
      li.append(a, state);
      list.append(li);
    }
    box.replaceChildren(heading, list);
  };

  const lookup = async () => {
    const text = summary.value.trim();
    const productId = product.value;
    const key = `${productId}\n${text}`;
    if (key === shownFor) return;
    if (text.length < 3 || !/^\d+$/.test(productId)) {
      shownFor = key;
      show([]);
      return;
    }
    const mine = ++latest;
    try {
      const params = new URLSearchParams({ product_id: productId, summary: text.slice(0, 255) });
      const res = await fetch(`/api/v1/search/similar?${params}`, {
        credentials: 'same-origin',
        headers: { accept: 'application/json' },
      });
      if (!res.ok || mine !== latest) return;
      const data = (await res.json()) as SimilarJson;
      if (mine !== latest) return;
      shownFor = key;
      show(data.bugs.slice(0, 5));
    } catch {
      // Offline or the server is restarting: suggestions are a help, not a requirement.
    }
  };

  const schedule = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(lookup, DELAY_MS);
  };
  summary.addEventListener('input', schedule);
  product.addEventListener('change', schedule);
  if (summary.value.trim()) schedule();
}

const box = document.getElementById('similar-bugs');
if (box) wire(box);
