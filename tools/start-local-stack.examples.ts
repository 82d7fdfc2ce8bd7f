/** The examples `npm start` prints: a generated scene, a curl and an `openai` client script that ask about it. */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { encodePng, generateItem } from "../scene-generator/index.js";

export interface Examples {
  dir: string;
  question: string;
  answer: string;
  curl: string;
  script: string;
}

/** A generated scene and the two ways to ask about it, written under .wrangler/stitch-example/. */
export function writeExamples(dir: string, edgeUrl: string, apiKey: string): Examples {
  mkdirSync(dir, { recursive: true });
  const item = generateItem(2026, 1);
  const qa = item.questions[0];
  if (!qa) throw new Error("the scene generator asked no question");
  const png = encodePng(item.rgb, item.side);
  const scenePath = path.join(dir, "scene.png");
  writeFileSync(scenePath, png);
  const body = {
    model: "stitch-sgl",
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: qa.question },
          { type: "image_url", image_url: { url: `data:image/png;base64,${Buffer.from(png).toString("base64")}` } },
        ],
      },
    ],
  };
  writeFileSync(path.join(dir, "request.json"), `${JSON.stringify(body, null, 2)}\n`);
  const curl = `curl -s ${edgeUrl}/v1/chat/completions -H "Authorization: Bearer ${apiKey}" -H "Content-Type: application/json" -d '${JSON.stringify(body).replaceAll("'", "'\\''")}'`;
  const script = `import { readFileSync } from "node:fs";
import OpenAI from "openai";

const client = new OpenAI({ baseURL: "${edgeUrl}/v1", apiKey: "${apiKey}" });
const image = readFileSync(${JSON.stringify(scenePath)}).toString("base64");
const reply = await client.chat.completions.create({
  model: "stitch-sgl",
  messages: [{ role: "user", content: [
    { type: "text", text: ${JSON.stringify(qa.question)} },
    { type: "image_url", image_url: { url: \`data:image/png;base64,\${image}\` } },
  ] }],
});
console.log(reply.choices[0].message.content, reply.stitch);
`;
  writeFileSync(path.join(dir, "openai-example.mjs"), script);
  return { dir, question: qa.question, answer: qa.answer, curl, script };
}
