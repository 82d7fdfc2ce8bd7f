import type { Scene, SceneObject } from "./layout-scene.js";
import type { Random } from "./random.js";
import { COLOURS, DIRECTIONS, type Direction, PLURAL_SHAPES, SHAPES, STEP, type Tier } from "./vocabulary.js";

export interface QuestionAnswer {
  tier: Tier;
  question: string;
  answer: string;
  /** Grid cells (row * grid + col) that the answer depends on: the regions a good ranking keeps. */
  evidence: number[];
}

const ATTRIBUTES = ["colour", "shape", "digit"] as const;

/** Asks one question of the given tier about the scene; every question has exactly one right answer. */
export function askQuestion(scene: Scene, tier: Tier, random: Random): QuestionAnswer {
  switch (tier) {
    case "exists":
      return askExists(scene, random);
    case "read":
      return askRead(scene, random);
    case "spatial":
      return askSpatial(scene, random) ?? askRead(scene, random);
    case "count":
      return askCount(scene, random);
  }
}

const cellOf = (scene: Scene, o: SceneObject) => o.row * scene.grid + o.col;
const describe = (o: SceneObject) => `${o.colour} ${o.shape}`;

function askExists(scene: Scene, random: Random): QuestionAnswer {
  const used = new Set(scene.objects.map(describe));
  const absent = COLOURS.flatMap((c) => SHAPES.map((s) => `${c} ${s}`)).filter((d) => !used.has(d));
  // A scene that holds every (colour, shape) pair leaves nothing absent to ask about.
  const present = random.next() < 0.5 || absent.length === 0;
  if (present) {
    const o = random.pick(scene.objects);
    return { tier: "exists", question: `is there a ${describe(o)} ?`, answer: "yes", evidence: [cellOf(scene, o)] };
  }
  return { tier: "exists", question: `is there a ${random.pick(absent)} ?`, answer: "no", evidence: [] };
}

function askRead(scene: Scene, random: Random): QuestionAnswer {
  const o = random.pick(scene.objects);
  return {
    tier: "read",
    question: `what digit is on the ${describe(o)} ?`,
    answer: String(o.digit),
    evidence: [cellOf(scene, o)],
  };
}

function askSpatial(scene: Scene, random: Random): QuestionAnswer | undefined {
  const pairs = scene.objects.flatMap((anchor) =>
    DIRECTIONS.map((direction) => ({ anchor, direction, target: neighbour(scene, anchor, direction) })),
  );
  const usable = pairs.filter((p): p is { anchor: SceneObject; direction: Direction; target: SceneObject } =>
    Boolean(p.target),
  );
  if (usable.length === 0) return undefined;
  const { anchor, direction, target } = random.pick(usable);
  const attribute = random.pick(ATTRIBUTES);
  const where = direction === "left" || direction === "right" ? `${direction} of` : direction;
  const question =
    attribute === "digit"
      ? `what digit is on the shape ${where} the ${describe(anchor)} ?`
      : `what ${attribute} is the shape ${where} the ${describe(anchor)} ?`;
  const answer = attribute === "digit" ? String(target.digit) : target[attribute];
  return { tier: "spatial", question, answer, evidence: [cellOf(scene, anchor), cellOf(scene, target)] };
}

function neighbour(scene: Scene, o: SceneObject, direction: Direction): SceneObject | undefined {
  const [dr, dc] = STEP[direction];
  return scene.objects.find((other) => other.row === o.row + dr && other.col === o.col + dc);
}

function askCount(scene: Scene, random: Random): QuestionAnswer {
  const byColour = random.next() < 0.5;
  const colour = random.pick(COLOURS);
  const shape = random.pick(SHAPES);
  const hits = scene.objects.filter((o) => (byColour ? o.colour === colour : o.shape === shape));
  const question = byColour ? `how many ${colour} shapes are there ?` : `how many ${PLURAL_SHAPES[shape]} are there ?`;
  return { tier: "count", question, answer: String(hits.length), evidence: hits.map((o) => cellOf(scene, o)) };
}
