export * from "./errors.js";
export * from "./paths.js";
export * from "./schemas/inference.js";
export * from "./schemas/metering.js";
export * from "./schemas/model-pack.js";
export * from "./sign-request.js";
