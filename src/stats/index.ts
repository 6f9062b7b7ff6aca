export { utcDay, VisitRecorder } from './recorder.ts';
export { type DailyUsage, type Statistics, statistics } from './service.ts';
export { statsRoutes } from './routes.ts';
