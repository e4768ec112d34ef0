export * from './call-record.js';
export * from './capture/capture-types.js';
export * from './capture/http-capture.js';
export * from './errors.js';
export * from './provider-error.js';
export * from './proxy-path.js';
export * from './routes/registry.js';
export * from './routes/route-descriptor.js';
