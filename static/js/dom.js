// Small DOM helpers: element building, avatars, times, toasts. No framework, no build step.

/** h("div.class#id", {attrs, on: {click}}, ...children): an element; strings become text. */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...rest] = spec.split(/(?=[.#])/);
  const el = document.createElement(tag || "div");
  for (const part of rest) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs === null || typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "on") {
      for (const [name, fn] of Object.entries(value)) el.addEventListener(name, fn);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else if (value !== false && value !== null && value !== undefined) {
      el.setAttribute(key, value);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

const AVATAR_COLOURS = ["#5C8CCF", "#E0A03A", "#4CB07A", "#B26ACF", "#D9645A", "#3FA8B5", "#8A8F3C"];

/** A square avatar with the first character of the name, coloured by the user id. */
export function avatar(person, size = "") {
  const name = (person && person.name) || "?";
  const colour = AVATAR_COLOURS[Math.abs(Number(person && person.id) || 0) % AVATAR_COLOURS.length];
  return h(`div.avatar${size ? "." + size : ""}`, { style: `background:${colour}`, title: name },
    [...name][0]);
}

const pad = (n) => String(n).padStart(2, "0");

/** "14:03" today, "11-24 14:03" on another day, "2025-11-24 14:03" in another year. */
export function shortTime(unix) {
  const d = new Date(unix * 1000);
  const now = new Date();
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (d.toDateString() === now.toDateString()) return clock;
  const day = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return d.getFullYear() === now.getFullYear() ? `${day} ${clock}` : `${d.getFullYear()}-${day} ${clock}`;
}

/**
 * "2025-11-24 14:04" in Beijing time (UTC+8, no daylight saving) wherever the browser is, the
 * minute rounded up: for "after then", it is never early.
 */
export function beijingTime(unix) {
  const d = new Date((Math.ceil(unix / 60) * 60 + 8 * 3600) * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} `
    + `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

/** "14:03:09": the grab times on the detail page, where seconds tell who was fastest. */
export function clockTime(unix) {
  const d = new Date(unix * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** WeChat's "M秒" / "M分钟" / "M小时" for how fast a packet was emptied. */
export function duration(seconds) {
  if (seconds < 60) return `${Math.max(seconds, 1)}秒`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}分钟`;
  return `${Math.floor(seconds / 3600)}小时`;
}

let toastTimer;

/** A short dark notice in the middle of the screen, as WeChat shows them. */
export function toast(text, ms = 2200) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, ms);
}
