// Stream a chat completion from Facade with Node's fetch (Node 18+) and print the text.
//
//   FACADE_URL=http://localhost:8000 FACADE_API_KEY=sk-demo \
//     node examples/clients/node_fetch.mjs "Write a haiku" [model]
//
// The text goes to stdout; the final metrics (tokens, cost, latency) to stderr as one JSON
// line. Exit code 1 on an error, before or during the stream.
//
// The body is decoded with a TextDecoderStream, which keeps a multi-byte character that is
// split across network reads whole; events are cut on the blank line that ends each one.

const url = (process.env.FACADE_URL ?? "http://localhost:8000").replace(/\/+$/, "");
const key = process.env.FACADE_API_KEY ?? "sk-demo";
const prompt = process.argv[2] ?? "Hello!";
const model = process.argv[3] ?? "gpt-3.5-turbo";

async function main() {
  const resp = await fetch(`${url}/api/v1/chat/completions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      model,
      messages: [{ role: "user", content: prompt }],
      stream: true,
      stream_options: { include_usage: true }, // the last chunk carries usage + metrics
    }),
  });
  if (!resp.ok) {
    // An error before the stream started: an ordinary JSON envelope.
    const body = await resp.json();
    console.error(`error ${body.code}: ${body.message} (request ${body.data.request_id})`);
    return 1;
  }

  let buffer = "";
  let metrics = null;
  for await (const text of resp.body.pipeThrough(new TextDecoderStream())) {
    buffer += text;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      // One event: its "data:" lines joined; ": keep-alive" comments have none.
      const data = block
        .split(/\r?\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (!data) continue;
      if (data === "[DONE]") {
        process.stdout.write("\n");
        if (metrics) console.error(JSON.stringify(metrics));
        return 0;
      }
      const event = JSON.parse(data); // the envelope: {success, code, message, data}
      if (!event.success) {
        // An error after the stream started.
        process.stdout.write("\n");
        console.error(`error ${event.code}: ${event.message} (request ${event.data.request_id})`);
        return 1;
      }
      for (const choice of event.data.choices) {
        process.stdout.write(choice.delta.content ?? "");
      }
      metrics = event.data.metrics ?? metrics;
    }
  }
  process.stdout.write("\n");
  console.error("error: the stream ended without [DONE]");
  return 1;
}

process.exitCode = await main();
