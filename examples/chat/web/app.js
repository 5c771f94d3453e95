// The chat page: rooms (channels `chat.<room>`), messages, who is here
// (presence and join/leave pushes) and the connection state, on
// @ferrygate/client served at /client/ by the development server.
//
// Query parameters (handy for demos and tests): `user` signs in at once,
// `room` picks the first room, `urls` (comma-separated) overrides the gateway
// URLs of /config.json, `ttl` asks for tokens that live that many seconds,
// `sse_after` is the client's `sseAfterFailures`.
import { Client } from "/client/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const config = await fetch("/config.json").then((r) => r.json());
const urls = params.get("urls")?.split(",") ?? config.urls;
const ttl = params.has("ttl") ? Number(params.get("ttl")) : undefined;
const rooms = ["lobby", "random", "help"];

let client;
let user;
let room;
let sub;
let presenceAsked = 0;

/** A token for `user` from the development server (called at each connect and refresh). */
async function getToken() {
  const response = await fetch("/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(ttl ? { user, ttl_s: ttl } : { user }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error);
  return body.token;
}

function signIn(name) {
  user = name;
  $("signin").hidden = true;
  $("chat").hidden = false;
  $("me").textContent = user;
  client = new Client({
    urls,
    getToken,
    backoff: { baseMs: 250, maxMs: 5000 },
    sseAfterFailures: Number(params.get("sse_after") ?? 3),
  });
  client.on("state", showState);
  client.on("connected", () => {
    showState();
    refreshPresence();
  });
  client.on("error", (e) => {
    // A token that could not be fetched (offline): the badge says it; the client retries.
    if (e.code === "token_failed") $("state").title = e.message;
    else notice(`${e.code}: ${e.message}`);
  });
  client.connect().catch(() => undefined); // the state badge tells
  join(params.get("room") ?? "lobby");
}

/** The badge: state, and while connected the transport and the gateway instance. */
function showState() {
  const badge = $("state");
  badge.dataset.state = client.state;
  const connected = client.state === "connected";
  const node = connected && client.welcome?.node ? ` · ${client.welcome.node.slice(0, 8)}` : "";
  badge.textContent = connected ? `connected · ${client.transport}${node}` : client.state;
  badge.dataset.transport = connected ? client.transport : "";
  const receiveOnly = connected && client.transport === "sse";
  $("text").disabled = receiveOnly;
  $("text").placeholder = receiveOnly ? "Receive-only (SSE): sending needs a WebSocket" : "Say something";
}

function join(name) {
  if (sub) sub.unsubscribe().catch(() => undefined);
  room = name;
  renderRooms();
  $("room").textContent = `# ${room}`;
  $("messages").replaceChildren();
  $("presence").replaceChildren();
  const mine = client.subscribe(`chat.${room}`, {
    onMessage: (data, meta) => sub === mine && addMessage(data, meta),
    onRecovered: ({ recovered }) => {
      if (!recovered) notice("Messages were missed while disconnected (their history is gone).");
    },
    onJoin: () => refreshPresence(),
    onLeave: () => refreshPresence(),
    onError: (e) => notice(`cannot join ${room}: ${e.code}`),
    onUnsubscribed: (reason) => notice(`removed from ${room}: ${reason}`),
  });
  sub = mine;
  mine.ready.then(() => refreshPresence(), () => undefined);
}

function addMessage(data, { offset }) {
  const item = document.createElement("li");
  item.className = "message";
  if (offset !== undefined) item.dataset.offset = String(offset);
  const who = document.createElement("span");
  who.className = "who";
  const fields = data !== null && typeof data === "object" ? data : { text: JSON.stringify(data) };
  who.textContent = typeof fields.user === "string" ? fields.user : "?";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = typeof fields.text === "string" ? fields.text : JSON.stringify(fields);
  item.append(who, text);
  append(item);
}

function notice(text) {
  const item = document.createElement("li");
  item.className = "notice";
  item.textContent = text;
  append(item);
}

function append(item) {
  const list = $("messages");
  const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  list.append(item);
  if (atEnd) list.scrollTop = list.scrollHeight;
}

/** Who is here: the `presence` op (WebSocket only); the latest answer wins. */
async function refreshPresence() {
  const list = $("presence");
  if (client.state !== "connected" || !sub) return;
  if (client.transport !== "ws") {
    list.replaceChildren(Object.assign(document.createElement("li"), { className: "unknown", textContent: "(not over SSE)" }));
    return;
  }
  const asked = ++presenceAsked;
  const channel = sub.channel;
  let answer;
  try {
    answer = await client.presence(channel);
  } catch {
    return; // asked again at the next join, leave or reconnect
  }
  if (asked !== presenceAsked || sub?.channel !== channel) return;
  const items = (answer.users ?? []).map(({ user: name, connections }) => {
    const item = document.createElement("li");
    item.textContent = connections > 1 ? `${name} (${connections} tabs)` : name;
    return item;
  });
  list.replaceChildren(...items);
}

function renderRooms() {
  if (!rooms.includes(room) && room) rooms.push(room);
  $("rooms").replaceChildren(
    ...rooms.map((name) => {
      const button = document.createElement("button");
      button.textContent = `# ${name}`;
      button.setAttribute("aria-current", String(name === room));
      button.onclick = () => name !== room && join(name);
      const item = document.createElement("li");
      item.append(button);
      return item;
    }),
  );
}

$("signin").onsubmit = (event) => {
  event.preventDefault();
  signIn($("name").value.trim());
};
$("newroom").onsubmit = (event) => {
  event.preventDefault();
  join($("roomname").value.trim());
  $("roomname").value = "";
};
$("composer").onsubmit = (event) => {
  event.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  client.publish(`chat.${room}`, { user, text }).catch((e) => {
    input.value ||= text;
    notice(`not sent (${e.code}): ${text}`);
  });
};
// For the browser console (and the page's tests): the live client.
window.ferrygateChat = { get client() { return client; } };
if (params.get("user")) signIn(params.get("user"));
