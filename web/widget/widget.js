/*
 * CRM bridge widget — the script a CRM page embeds (served as /widget.js).
 *
 *   <script src="https://bridge.example.com:8090/widget.js" data-token="…"></script>
 *   window.addEventListener('crm-bridge', (e) => console.log(e.detail.event, e.detail.data));
 *
 * or, without data-token:
 *
 *   CrmBridge.connect({ token, onEvent: (type, data) => { … } });
 *   CrmBridge.callOut('+4915112345678');        // -> Promise<{ ok, action, status?, message? }>
 *   CrmBridge.setPresence('not_ready', 'lunch'); // -> Promise<{ ok, … }>
 *
 * Presence sync both ways (api.presence): call setPresence whenever the CRM's presence changes,
 * and follow the bridge's 'presenceSync' event { agent, state, reason } — the queues changed on
 * the PBX and the CRM's presence should now be `state`. Changes the CRM asked for itself never
 * come back as presenceSync, so the two handlers cannot ping-pong.
 *
 * It creates a hidden iframe to /widget on the bridge's origin (the origin this script was loaded
 * from). The iframe holds the event stream and posts each event here; this script accepts only
 * messages whose origin is the bridge and whose source is that iframe. The iframe, in turn, talks
 * only to origins in the bridge's http.allowedOrigins. See docs/agent-page.md.
 *
 * A classic script (no module, no build step): it must work in any CRM page.
 */
(function () {
  'use strict';

  if (window.CrmBridge && window.CrmBridge.version) return; // included twice: keep the first

  var script = document.currentScript;
  var scriptOrigin = null;
  try {
    if (script && script.src) scriptOrigin = new URL(script.src, location.href).origin;
  } catch (e) {
    scriptOrigin = null;
  }

  var READY_TIMEOUT_MS = 15000;
  var QUEUE_MAX = 20;
  var REQUEST_TIMEOUT_MS = 20000;

  var state = {
    iframe: null,
    origin: null,
    onEvent: null,
    ready: false,
    /** actions posted before the iframe said ready */
    queue: [],
    /** id -> resolve of a callOut / setPresence promise */
    waiting: {},
    nextId: 1,
    readyTimer: null,
    info: null,
  };

  function emit(type, data) {
    if (typeof state.onEvent === 'function') {
      try {
        state.onEvent(type, data);
      } catch (err) {
        // The host's handler failed: report it without breaking the widget.
        setTimeout(function () {
          throw err;
        });
      }
    }
    var ev;
    try {
      ev = new CustomEvent('crm-bridge', { detail: { event: type, data: data } });
    } catch (e) {
      ev = document.createEvent('CustomEvent');
      ev.initCustomEvent('crm-bridge', false, false, { event: type, data: data });
    }
    window.dispatchEvent(ev);
  }

  function onMessage(e) {
    var frame = state.iframe;
    if (!frame || e.source !== frame.contentWindow || e.origin !== state.origin) return;
    var m = e.data;
    if (!m || typeof m !== 'object' || m.source !== 'crm-bridge' || typeof m.event !== 'string') return;
    var data = m.data;
    if (m.event === 'ready') {
      if (state.ready) return; // said again in answer to our hello: once is enough
      state.ready = true;
      state.info = data || null;
      clearTimeout(state.readyTimer);
      flush();
    }
    if ((m.event === 'result' || m.event === 'error') && data && typeof data === 'object' && data.id !== undefined && state.waiting[data.id]) {
      var resolve = state.waiting[data.id];
      delete state.waiting[data.id];
      resolve(m.event === 'result' ? assign({ ok: true }, data) : assign({ ok: false }, data));
    }
    emit(m.event, data);
  }

  function assign(target, src) {
    for (var k in src) if (Object.prototype.hasOwnProperty.call(src, k)) target[k] = src[k];
    return target;
  }

  function send(msg) {
    var frame = state.iframe;
    if (!frame || !frame.contentWindow) return false;
    frame.contentWindow.postMessage(msg, state.origin); // delivered only if the frame is still the bridge's
    return true;
  }

  function flush() {
    var q = state.queue;
    state.queue = [];
    for (var i = 0; i < q.length; i++) send(q[i]);
  }

  function request(msg) {
    return new Promise(function (resolve) {
      if (!state.iframe) {
        resolve({ ok: false, action: msg.action, message: 'not connected: call CrmBridge.connect({ token }) first' });
        return;
      }
      msg.id = state.nextId++;
      var id = msg.id;
      state.waiting[id] = resolve;
      // No answer at all (origin not allow-listed, bridge down): settle anyway.
      setTimeout(function () {
        if (state.waiting[id] !== resolve) return;
        delete state.waiting[id];
        resolve({ ok: false, action: msg.action, id: id, message: 'no answer from the bridge (timed out)' });
      }, REQUEST_TIMEOUT_MS);
      if (state.ready) send(msg);
      else {
        state.queue.push(msg);
        if (state.queue.length > QUEUE_MAX) {
          var dropped = state.queue.shift();
          var r = state.waiting[dropped.id];
          delete state.waiting[dropped.id];
          if (r) r({ ok: false, action: dropped.action, id: dropped.id, message: 'dropped: too many actions before the bridge was ready' });
        }
      }
    });
  }

  function disconnect() {
    clearTimeout(state.readyTimer);
    window.removeEventListener('message', onMessage);
    if (state.iframe && state.iframe.parentNode) state.iframe.parentNode.removeChild(state.iframe);
    state.iframe = null;
    state.ready = false;
    state.info = null;
    var waiting = state.waiting;
    state.waiting = {};
    state.queue = [];
    for (var id in waiting) if (Object.prototype.hasOwnProperty.call(waiting, id)) waiting[id]({ ok: false, id: Number(id), message: 'disconnected' });
  }

  function connect(opts) {
    opts = opts || {};
    if (typeof opts.token !== 'string' || !opts.token) throw new TypeError('CrmBridge.connect: a token is required');
    var origin = scriptOrigin;
    if (opts.bridgeUrl) origin = new URL(opts.bridgeUrl, location.href).origin;
    if (!origin || !/^https?:/.test(origin)) throw new Error('CrmBridge.connect: cannot tell the bridge address; pass { bridgeUrl }');
    disconnect();
    state.origin = origin;
    state.onEvent = typeof opts.onEvent === 'function' ? opts.onEvent : null;
    window.addEventListener('message', onMessage);

    var frame = document.createElement('iframe');
    frame.src = origin + '/widget?token=' + encodeURIComponent(opts.token);
    frame.title = 'CRM bridge connection';
    frame.setAttribute('aria-hidden', 'true');
    frame.setAttribute('tabindex', '-1');
    // The widget learns this page's origin from the referrer if the hello below is late.
    frame.setAttribute('referrerpolicy', 'origin');
    frame.style.cssText = 'position:fixed;right:0;bottom:0;width:1px;height:1px;border:0;opacity:0;pointer-events:none;';
    frame.addEventListener('load', function () {
      if (state.iframe !== frame) return;
      // Tell the widget who we are: it answers 'ready' only if this origin is allow-listed.
      send({ action: 'hello' });
    });
    state.iframe = frame;
    state.readyTimer = setTimeout(function () {
      if (state.iframe === frame && !state.ready && window.console) {
        console.warn(
          'CrmBridge: no answer from the bridge at ' + origin + '. Is ' + location.origin +
            ' listed in the bridge config under http.allowedOrigins, and is the token valid?'
        );
      }
    }, READY_TIMEOUT_MS);

    var attach = function () {
      if (state.iframe === frame) (document.body || document.documentElement).appendChild(frame);
    };
    if (document.body) attach();
    else document.addEventListener('DOMContentLoaded', attach, { once: true });
    return api;
  }

  var api = {
    version: 1,
    connect: connect,
    disconnect: disconnect,
    /** Places a call from the agent's phone to `number` (click-to-call). */
    callOut: function (number) {
      return request({ action: 'callOut', number: number === undefined || number === null ? '' : String(number) });
    },
    /** Sets the agent ready / not ready. */
    setPresence: function (presence, reason) {
      var msg = { action: 'presence', state: presence };
      if (reason !== undefined && reason !== null) msg.reason = String(reason);
      return request(msg);
    },
    /** True once the bridge answered (this origin is allow-listed and the token accepted). */
    get ready() {
      return state.ready;
    },
    /** What the bridge said when ready: { agent, supervisor }. */
    get info() {
      return state.info;
    },
  };

  window.CrmBridge = api;

  // <script src=".../widget.js" data-token="…" data-on-event="myHandler"> connects right away.
  if (script && script.getAttribute('data-token')) {
    var handlerName = script.getAttribute('data-on-event');
    var handler = null;
    if (handlerName) {
      handler = function (type, data) {
        var fn = window[handlerName];
        if (typeof fn === 'function') fn(type, data);
      };
    }
    connect({ token: script.getAttribute('data-token'), onEvent: handler });
  }
})();
