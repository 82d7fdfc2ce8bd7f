export { askQuestion, type QuestionAnswer } from "./ask-question.js";
export { cellLabels } from "./cell-labels.js";
export { encodePng } from "./encode-png.js";
export {
  DEFAULT_GENERATOR_OPTIONS,
  type GeneratorOptions,
  generateItem,
  pickTier,
  type SceneItem,
} from "./generate-item.js";
export type { Scene, SceneObject } from "./layout-scene.js";
export * from "./vocabulary.js";
