// simswarm dashboard: live regions, relative times, actions. Pages are
// rendered on the server; this only refetches the page when the server says
// one of its topics changed, and swaps in the regions marked data-live.
(function () {
  'use strict';
  var topics = (document.body.dataset.topics || '').split(' ').filter(Boolean);
  var live = document.getElementById('live');
  var busy = false, again = false;

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          // A region holding a half-confirmed action waits for the click.
          if (!fresh || el.querySelector('form.armed')) return;
          if (fresh.innerHTML !== el.innerHTML) el.replaceWith(fresh);
        });
        ago();
      })
      .catch(function () {})
      .finally(function () {
        busy = false;
        if (again) { again = false; setTimeout(refresh, 300); }
      });
  }

  if (topics.length && window.EventSource) {
    var es = new EventSource('/api/events');
    es.addEventListener('change', function (e) {
      var changed = JSON.parse(e.data);
      if (changed.some(function (t) { return topics.indexOf(t) >= 0; })) refresh();
    });
    es.onopen = function () { live.classList.add('on'); live.title = 'live'; };
    es.onerror = function () { live.classList.remove('on'); live.title = 'disconnected: retrying'; };
  }

  // "12s ago" keeps counting between refreshes.
  function ago() {
    var now = Date.now();
    document.querySelectorAll('time[data-ago]').forEach(function (t) {
      var s = Math.max(0, Math.round((now - Date.parse(t.getAttribute('datetime'))) / 1000));
      var txt = s < 2 ? 'just now' : s < 60 ? s + 's ago' : s < 3600 ? Math.floor(s / 60) + 'm ago'
        : s < 172800 ? Math.floor(s / 3600) + 'h ago' : null;
      if (txt && t.textContent !== txt) t.textContent = txt;
    });
  }
  setInterval(ago, 1000);

  function toast(msg, bad) {
    var t = document.getElementById('toast');
    t.textContent = msg;
    t.className = 'show' + (bad ? ' bad' : '');
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.className = ''; }, 4000);
  }

  // Actions: a first click arms a button that asks to be sure, the second
  // posts; the answer shows as a toast and the page refreshes.
  document.addEventListener('submit', function (e) {
    var f = e.target;
    if (!f.matches('form.action')) return;
    e.preventDefault();
    var btn = f.querySelector('button');
    if (f.dataset.confirm && !f.classList.contains('armed')) {
      f.classList.add('armed');
      btn.dataset.label = btn.textContent;
      btn.textContent = f.dataset.confirm;
      setTimeout(function () {
        if (f.classList.contains('armed')) { f.classList.remove('armed'); btn.textContent = btn.dataset.label; }
      }, 5000);
      return;
    }
    f.classList.remove('armed');
    if (btn.dataset.label) btn.textContent = btn.dataset.label;
    btn.disabled = true;
    fetch(f.action, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Accept': 'application/json' },
      body: new URLSearchParams(new FormData(f))
    }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, j: j }; });
    }).then(function (x) {
      toast(x.ok ? x.j.message : (x.j.error || 'failed'), !x.ok);
      refresh();
    }).catch(function (err) { toast(String(err), true); })
      .finally(function () { btn.disabled = false; });
  });
})();
