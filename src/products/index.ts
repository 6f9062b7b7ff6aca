/** The products module: products, versions (releases), components. */
export { productsRoutes } from './routes.ts';
export {
  createComponent,
  createProduct,
  createVersion,
  getProduct,
  listProducts,
  resolveFilingTarget,
} from './service.ts';
