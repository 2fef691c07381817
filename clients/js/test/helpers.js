// What the tests need around the client: the server they are pointed at, its admin API and dev
// tokens, clients closed when their test ends, and events waited for.

import { randomInt } from "node:crypto";

import { Client } from "@rtserver/client";

/** A variable of the environment that tests/test_js_client.py (or a person) sets. */
function given(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/test_js_client.py, or set it`);
  return value;
}

// A server run with --dev (POST /dev/token) and a --rate-limit, and beside it one whose dev
// tokens last a few seconds (--dev-token-ttl), sharing its database and Redis.
export const SERVER = given("RTSERVER_URL");
export const SHORT_TOKEN_SERVER = given("RTSERVER_SHORT_TOKEN_URL");
export const RATE_LIMIT = Number(given("RTSERVER_RATE_LIMIT"));
const ADMIN_TOKEN = given("RTSERVER_ADMIN_TOKEN");

// Ids of this file's own, far from any other test's: each test file runs in a process of its own.
let nextId = 3_000_000_000_000 + randomInt(1_000_000_000) * 1000;

async function adminCall(method, path, body) {
  const response = await fetch(SERVER + path, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** A new user, provisioned as the chat app's back end does. */
export async function user(name) {
  const id = nextId++;
  await adminCall("PUT", `/admin/users/${id}`, { name });
  return id;
}

export async function group(members, name) {
  const id = nextId++;
  await adminCall("PUT", `/admin/groups/${id}`, { name, members });
  return id;
}

export async function deposit(userId, amount) {
  return (await adminCall("POST", `/admin/wallets/${userId}/deposit`, { amount, ref: `js-${nextId++}` })).balance;
}

/** A token for the user from the server's POST /dev/token, as a page under --dev gets one. */
export async function devToken(server, userId) {
  const response = await fetch(server + "/dev/token", { method: "POST", body: JSON.stringify({ user_id: userId }) });
  if (!response.ok) throw new Error(`/dev/token: ${response.status}`);
  return (await response.json()).token;
}

/**
 * A client of `userId` (of SERVER unless `url` says otherwise) with its tokens from /dev/token of
 * `tokens`, closed when the test `t` ends. The servers share their token secret.
 */
export function clientOf(t, userId, { tokens = SERVER, ...options } = {}) {
  const client = new Client({ url: SERVER, getToken: () => devToken(tokens, userId), ...options });
  t.after(() => client.close());
  return client;
}

/** The next `name` event of `client` (for which `where` holds); fails after `timeout` ms. */
export function next(client, name, { timeout = 10000, where = () => true } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${name} event in ${timeout} ms`));
    }, timeout);
    const off = client.on(name, (value) => {
      if (!where(value)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

/** Every `name` event of `client` from now on, in order. */
export function record(client, name) {
  const seen = [];
  client.on(name, (value) => seen.push(value));
  return seen;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait until the Unix time `t` (seconds) has passed on this machine's clock. */
export function sleepUntil(t) {
  return sleep(Math.max(0, t * 1000 - Date.now()));
}
