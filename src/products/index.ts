/** The products module: products, versions (releases), components. */
export { productsRoutes } from './routes.ts';
export {
  createComponent,
  createProduct,
  createVersion,
  getComponent,
  getProduct,
  getVersion,
  listProducts,
  type ProductsContext,
  resolveFilingTarget,
  updateComponent,
  updateProduct,
  updateVersion,
} from './service.ts';
