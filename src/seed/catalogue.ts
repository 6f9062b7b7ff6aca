/**
 * The small, fixed part of the demo data: products with their versions and components, and users.
 * Each step is idempotent by name or e-mail, so seeding a database that already has some of them
 * reuses what is there.
 */
import { join, type Queryable, sql } from '../platform/db.ts';
import { FIRST_NAMES, LAST_NAMES } from './words.ts';

/** A product as the bulk bug generator sees it: ids only, released versions first. */
export interface CatalogueProduct {
  id: number;
  weight: number;
  isReleased: boolean;
  versions: { id: number; name: string; isReleased: boolean }[];
  componentIds: number[];
}

/** How many rows each step created (rows that already existed are not counted). */
export interface CatalogueCounts {
  products: number;
  versions: number;
  components: number;
  users: number;
}

interface ProductSpec {
  name: string;
  description: string;
  released: boolean;
  style: 'classic' | 'calendar' | 'firmware' | 'preview';
}

const PRODUCT_SPECS: ProductSpec[] = [
  { name: 'Omega Server', description: 'The on-premises server.', released: true, style: 'classic' },
  {
    name: 'Omega Desktop',
    description: 'Desktop client for Windows, macOS and Linux.',
    released: true,
    style: 'classic',
  },
  { name: 'Omega Mobile', description: 'Apps for Android and iOS.', released: true, style: 'calendar' },
  {
    name: 'Omega Cloud Gateway',
    description: 'Hosted gateway between sites and the cloud.',
    released: true,
    style: 'calendar',
  },
  {
    name: 'Omega Analytics',
    description: 'Dashboards and scheduled reports.',
    released: true,
    style: 'classic',
  },
  { name: 'Omega SDK', description: 'Client libraries and samples.', released: true, style: 'classic' },
  {
    name: 'Omega Firmware',
    description: 'Firmware for Omega appliances.',
    released: true,
    style: 'firmware',
  },
  {
    name: 'Project Orion',
    description: 'Internal-only: the next-generation sync engine.',
    released: false,
    style: 'preview',
  },
  { name: 'Omega Backup', description: 'Scheduled backup and restore.', released: true, style: 'classic' },
  {
    name: 'Omega Identity',
    description: 'Single sign-on and directory sync.',
    released: true,
    style: 'calendar',
  },
  {
    name: 'Omega Edge Agent',
    description: 'Agent for branch-office devices.',
    released: true,
    style: 'firmware',
  },
  {
    name: 'Omega Web Portal',
    description: 'Self-service portal for end users.',
    released: true,
    style: 'calendar',
  },
  {
    name: 'Omega Print Services',
    description: 'Secure printing and print queues.',
    released: true,
    style: 'classic',
  },
  {
    name: 'Project Vega',
    description: 'Internal-only: AI-assisted triage prototype.',
    released: false,
    style: 'preview',
  },
  {
    name: 'Omega Mail Relay',
    description: 'Outbound mail relay and filtering.',
    released: true,
    style: 'classic',
  },
  {
    name: 'Omega Data Connector',
    description: 'Connectors to ERP and CRM systems.',
    released: true,
    style: 'classic',
  },
  { name: 'Omega Scheduler', description: 'Job scheduling across sites.', released: true, style: 'calendar' },
  { name: 'Omega Monitoring', description: 'Health checks and alerting.', released: true, style: 'calendar' },
  { name: 'Omega Search', description: 'Full-text search service.', released: true, style: 'classic' },
  { name: 'Omega Billing', description: 'Licensing and billing back end.', released: true, style: 'classic' },
  {
    name: 'Omega CLI',
    description: 'Command-line tools for administrators.',
    released: true,
    style: 'classic',
  },
  { name: 'Omega Kiosk', description: 'Locked-down kiosk mode.', released: true, style: 'firmware' },
];

const VERSION_NAMES: Record<ProductSpec['style'], string[]> = {
  classic: ['1.0', '1.1', '2.0', '2.1', '3.0', '3.1', '3.2', '4.0-beta'],
  calendar: ['2023.1', '2023.2', '2023.3', '2024.1', '2024.2', '2024.3', '2025.1', '2025.2-rc'],
  firmware: ['FW 1.0.4', 'FW 1.2.0', 'FW 1.4.2', 'FW 2.0.1', 'FW 2.1.0', 'FW 2.2.3', 'FW 3.0.0-beta'],
  preview: ['0.1', '0.2', '0.3', '0.4-alpha'],
};

const COMPONENT_NAMES = [
  'Installer',
  'UI',
  'Networking',
  'Storage',
  'Authentication',
  'Reporting',
  'API',
  'Documentation',
  'Sync Engine',
  'Notifications',
  'Search',
  'Licensing',
  'Performance',
  'Localization',
  'Accessibility',
  'Security',
  'Database',
  'Logging',
  'Updater',
  'Plugins',
];

/** Fixed accounts the README and demos refer to. */
export const DEMO_ACCOUNTS = [
  { email: 'admin@bugzot.example', name: 'Demo Admin', kind: 'internal', isAdmin: true },
  { email: 'dev@bugzot.example', name: 'Dana Developer', kind: 'internal', isAdmin: false },
  { email: 'customer@example.com', name: 'Casey Customer', kind: 'external', isAdmin: false },
] as const;

/** A small deterministic PRNG (mulberry32) for the catalogue, which is built in Node. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How many products a run of `bugs` bugs gets: 8 for small runs, up to all of them for large ones. */
export function productCount(bugs: number): number {
  const extra = bugs > 10_000 ? Math.floor(Math.log2(bugs / 10_000) * 2) : 0;
  return Math.min(PRODUCT_SPECS.length, 8 + extra);
}

const DAY_MS = 86_400_000;

/**
 * Creates the users: the demo accounts, then `count` generated staff and customers (about a quarter
 * internal, a few of them admins). Returns how many rows were new.
 */
export async function seedUsers(
  tx: Queryable,
  opts: { count: number; passwordHash: string; now: Date },
): Promise<number> {
  const past = (days: number) => new Date(opts.now.getTime() - days * DAY_MS);
  const demo = await tx.query(sql`
    INSERT INTO users (email, name, password_hash, kind, is_admin, created_at)
    VALUES ${join(
      DEMO_ACCOUNTS.map(
        (a) => sql`(${a.email}, ${a.name}, ${opts.passwordHash}, ${a.kind}, ${a.isAdmin}, ${past(1100)})`,
      ),
    )}
    ON CONFLICT DO NOTHING
    RETURNING id`);
  if (opts.count <= 0) return demo.length;
  const internal = Math.max(2, Math.round(opts.count * 0.25));
  const admins = Math.max(1, Math.ceil(internal * 0.04));
  const companies = Math.max(2, Math.ceil((opts.count - internal) / 12));
  // Names are drawn in SQL; a per-name counter keeps e-mail addresses unique (anna.kim2@...).
  const generated = await tx.query(sql`
    INSERT INTO users (email, name, password_hash, kind, is_admin, created_at)
    SELECT lower(u.first_name || '.' || u.last_name) || CASE WHEN u.n > 1 THEN u.n::text ELSE '' END
             || '@' || u.domain,
           u.first_name || ' ' || u.last_name, ${opts.passwordHash}, u.kind, u.i <= ${admins},
           ${past(730)}::timestamptz - make_interval(secs => random() * 365 * 86400)
    FROM (
      SELECT x.*, row_number() OVER (PARTITION BY x.first_name, x.last_name, x.domain ORDER BY x.i) AS n
      FROM (
        SELECT g.i,
               f.names[1 + floor(random() * cardinality(f.names))::int] AS first_name,
               l.names[1 + floor(random() * cardinality(l.names))::int] AS last_name,
               CASE WHEN g.i <= ${internal} THEN 'internal' ELSE 'external' END AS kind,
               CASE WHEN g.i <= ${internal} THEN 'omega.example'
                    ELSE 'customer-' || (1 + floor(random() * ${companies}))::int || '.example' END AS domain
        FROM generate_series(1, ${opts.count}) AS g(i),
             (SELECT ${FIRST_NAMES}::text[] AS names) f,
             (SELECT ${LAST_NAMES}::text[] AS names) l
      ) x
    ) u
    ORDER BY u.i
    ON CONFLICT DO NOTHING
    RETURNING id`);
  return demo.length + generated.length;
}

/**
 * Creates the products for a run of `bugs` bugs with their versions (the newest one or two
 * unreleased) and components, and returns them as the bug generator needs them.
 */
export async function seedProducts(
  tx: Queryable,
  opts: { bugs: number; seed: number; now: Date; internalUserIds: number[] },
): Promise<{ products: CatalogueProduct[]; counts: Omit<CatalogueCounts, 'users'> }> {
  const rand = prng(opts.seed);
  const specs = PRODUCT_SPECS.slice(0, productCount(opts.bugs));
  const past = (days: number) => new Date(opts.now.getTime() - days * DAY_MS);

  const insertedProducts = await tx.query(sql`
    INSERT INTO products (name, description, is_released, created_at)
    VALUES ${join(specs.map((p) => sql`(${p.name}, ${p.description}, ${p.released}, ${past(1000)})`))}
    ON CONFLICT DO NOTHING
    RETURNING id`);
  const rows = await tx.query<{ id: number; name: string; is_released: boolean }>(sql`
    SELECT id, name, is_released FROM products
    WHERE lower(name) = ANY(${specs.map((p) => p.name.toLowerCase())}::text[])`);
  const byName = new Map(rows.map((r) => [r.name.toLowerCase(), r]));
  const planned = specs.map((spec, i) => {
    const row = byName.get(spec.name.toLowerCase());
    if (!row) throw new Error(`seed: product ${spec.name} is missing after insert`);
    const all = VERSION_NAMES[spec.style];
    const count = spec.style === 'preview' ? all.length : 4 + Math.floor(rand() * (all.length - 3));
    const unreleased = spec.released ? 1 + Math.floor(rand() * 2) : count;
    const versions = all.slice(0, count).map((name, v) => ({ name, released: v < count - unreleased, v }));
    const components = COMPONENT_NAMES.filter(() => rand() < 0.45);
    for (const name of COMPONENT_NAMES) {
      if (components.length >= 5) break;
      if (!components.includes(name)) components.push(name);
    }
    // Earlier products in the list get more bugs, the way a flagship product does.
    const weight = Math.max(1, Math.round(24 / (i + 1) ** 0.8)) * (spec.released ? 1 : 0.3);
    return { id: row.id, name: spec.name, isReleased: row.is_released, weight, versions, components };
  });

  const insertedVersions = await tx.query(sql`
    INSERT INTO versions (product_id, name, is_released, sort_key, created_at)
    VALUES ${join(
      planned.flatMap((p) =>
        p.versions.map(
          (v) =>
            sql`(${p.id}, ${v.name}, ${v.released}, ${(v.v + 1) * 10}, ${past(900 - (v.v * 900) / p.versions.length)})`,
        ),
      ),
    )}
    ON CONFLICT DO NOTHING
    RETURNING id`);
  const pick = (ids: number[]) => ids[Math.floor(rand() * ids.length)] ?? null;
  const insertedComponents = await tx.query(sql`
    INSERT INTO components (product_id, name, description, default_assignee_id, created_at)
    VALUES ${join(
      planned.flatMap((p) =>
        p.components.map(
          (c) => sql`(${p.id}, ${c}, ${`${c} of ${p.name}.`}, ${pick(opts.internalUserIds)}, ${past(1000)})`,
        ),
      ),
    )}
    ON CONFLICT DO NOTHING
    RETURNING id`);

  // Read back everything (also rows that existed before) in the order the generator relies on.
  const productIds = planned.map((p) => p.id);
  const versions = await tx.query<{ id: number; product_id: number; name: string; is_released: boolean }>(sql`
    SELECT id, product_id, name, is_released FROM versions
    WHERE product_id = ANY(${productIds}::int[])
    ORDER BY product_id, is_released DESC, sort_key, id`);
  const components = await tx.query<{ id: number; product_id: number }>(sql`
    SELECT id, product_id FROM components WHERE product_id = ANY(${productIds}::int[]) ORDER BY product_id, id`);
  const products = planned.map((p) => ({
    id: p.id,
    weight: p.weight,
    isReleased: p.isReleased,
    versions: versions
      .filter((v) => v.product_id === p.id)
      .map((v) => ({ id: v.id, name: v.name, isReleased: v.is_released })),
    componentIds: components.filter((c) => c.product_id === p.id).map((c) => c.id),
  }));
  return {
    products: products.filter((p) => p.versions.length > 0 && p.componentIds.length > 0),
    counts: {
      products: insertedProducts.length,
      versions: insertedVersions.length,
      components: insertedComponents.length,
    },
  };
}
