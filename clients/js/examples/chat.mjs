// A minimal chat participant: connect, subscribe with recovery, publish, and
// show the connection state. Run against a gateway:
//
//   FERRYGATE_URL=ws://127.0.0.1:8080/ws node examples/chat.mjs "hello"
//
// (Node 20 needs `node --experimental-websocket`; Node 22+ has WebSocket built in.)
// It sends its arguments as messages on `room.lobby`, prints what arrives,
// and exits once it has read back its own messages.
import { Client, FerrygateError } from "../dist/index.js";

const url = process.env.FERRYGATE_URL ?? "ws://127.0.0.1:8080/ws";
const texts = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["hello from the example"];

const client = new Client({
  url,
  // Or `getToken: async () => fetchTokenFromYourBackend()`, called at each connect and refresh.
  token: process.env.FERRYGATE_TOKEN,
});
client.on("state", (state) => console.log(`[${state}]`));
client.on("error", (error) => console.error(`error ${error.code}: ${error.message}`));

await client.connect();
let seen = 0;
const done = new Promise((resolve) => {
  client.subscribe("room.lobby", {
    onMessage: (data, meta) => {
      console.log(`#${meta.offset ?? "-"} ${JSON.stringify(data)}`);
      if (++seen === texts.length) resolve();
    },
    // After a reconnect: false means messages were lost; reload from your own source.
    onRecovered: ({ recovered }) => console.log(recovered ? "(caught up)" : "(missed messages: reload)"),
  }).ready.catch((error) => console.error(`subscribe failed: ${error.code}`));
});
for (const text of texts) {
  try {
    await client.publish("room.lobby", { text });
  } catch (error) {
    if (error instanceof FerrygateError) console.error(`publish refused: ${error.code}`);
    else throw error;
  }
}
await done;
client.close();
