// The token: this tab only (sessionStorage), taken from ?token= and removed from the address bar.

const TOKEN_KEY = 'crm-bridge.supervisor-token';

function tabStore() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

export function readToken() {
  try {
    return tabStore()?.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}

export function writeToken(token) {
  try {
    if (token) tabStore()?.setItem(TOKEN_KEY, token);
    else tabStore()?.removeItem(TOKEN_KEY);
  } catch {
    /* storage full or disabled: the token lives in memory for this page only */
  }
}

/** `?token=` in the address: taken, and removed from the address bar (the agent page's own). */
export { takeTokenFromUrl } from '/agent/assets/storage.js';
