"""The HTML report's inline stylesheet and script (catalog/report_html.py). Nothing here
comes from input: the script reads only the page's own data-* attributes."""

CSS = """
:root{--red:#c9302c;--red-bg:#fdecea;--amber:#a86400;--amber-bg:#fff3d6;--green:#23854a;--green-bg:#e5f5eb;
--grey:#5f6b7a;--line:#e3e6ea;--ink:#1d2430;--bg:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#fff;border-bottom:1px solid var(--line);padding:18px 28px 14px}
h1{font-size:21px;margin:0 0 2px}
.meta{color:var(--grey);font-size:13px}
.summary{margin:10px 0 6px;font-size:15px}
.bar{display:flex;height:8px;border-radius:4px;overflow:hidden;background:var(--line);max-width:720px}
.bar span{display:block}
nav{position:sticky;top:0;z-index:2;background:rgba(246,247,249,.96);backdrop-filter:blur(4px);
padding:10px 28px;border-bottom:1px solid var(--line);display:flex;gap:8px;flex-wrap:wrap;align-items:center}
nav button{font:inherit;border:1px solid var(--line);background:#fff;border-radius:16px;padding:4px 12px;
cursor:pointer;color:var(--ink)}
nav button b{font-weight:600;margin-left:4px}
nav button[aria-pressed=true]{background:var(--ink);color:#fff;border-color:var(--ink)}
nav button:disabled{opacity:.45;cursor:default}
nav input{margin-left:auto;font:inherit;padding:4px 10px;border:1px solid var(--line);border-radius:16px;width:220px}
main{padding:14px 28px 40px}
.empty{color:var(--grey);padding:30px 0}
article{background:#fff;border:1px solid var(--line);border-left:5px solid var(--green);border-radius:8px;
margin:0 0 12px;padding:12px 16px;display:grid;grid-template-columns:auto 1fr;gap:6px 20px;align-items:start;
content-visibility:auto;contain-intrinsic-block-size:auto 200px}
article.red{border-left-color:var(--red)}article.amber{border-left-color:#e0a100}
.pics{display:flex;gap:10px;align-items:flex-start}
.pics.blank .frame{height:64px}
.info{display:flex;flex-direction:column;gap:7px;min-width:0}
figure{margin:0;width:160px}
.frame{position:relative;width:160px;height:160px;display:flex;align-items:center;justify-content:center;
background:#fff;border:1px solid #eceef1;border-radius:4px;overflow:hidden}
.frame img{max-width:160px;max-height:160px;display:block}
.frame svg{position:absolute;pointer-events:none}
.frame svg path{fill:none;stroke:#ff2d8a;stroke-width:1.6;stroke-linejoin:round;vector-effect:non-scaling-stroke}
.src:hover svg{opacity:0}
.none{color:var(--grey);font-size:12px;text-align:center;padding:8px}
figcaption{font-size:12px;color:var(--grey);margin-top:3px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.dot{display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:5px;vertical-align:0}
.dot.pass{background:var(--green)}.dot.warn{background:#e0a100}.dot.fail{background:var(--red)}
.head{display:flex;gap:10px;align-items:baseline;flex-wrap:wrap;min-width:0}
h2{font-size:16px;margin:0;word-break:break-all}
.name{color:var(--grey)}
.facts{color:var(--grey);font-size:12px}
.reason{margin:0;color:#3a4350;word-break:break-word}
.chips{display:flex;flex-wrap:wrap;gap:6px;align-content:flex-start}
.chip{display:inline-block;border-radius:12px;padding:2px 10px;font-size:12.5px;border:1px solid transparent;
white-space:normal}
.chip.fail{background:var(--red-bg);color:#8f1f1b;border-color:#f3b7b3}
.chip.warn{background:var(--amber-bg);color:#7a4a00;border-color:#f0d28a}
.chip .where{opacity:.7;margin-left:4px}
.state{font-weight:600;text-transform:uppercase;font-size:11px;letter-spacing:.04em;padding:2px 9px}
.state.exported{background:var(--green-bg);color:var(--green)}
.state.warnings{background:var(--amber-bg);color:var(--amber)}
.state.failed{background:var(--red);color:#fff}
.state.rejected{background:#7d1d3f;color:#fff}
.state.held,.state.other{background:#e8eaf6;color:#3949ab}
details{font-size:12.5px}
summary{cursor:pointer;color:var(--grey)}
table{border-collapse:collapse;margin-top:6px}
th,td{padding:2px 10px 2px 0;text-align:left;font-weight:normal;white-space:nowrap}
thead th{color:var(--grey);font-size:11.5px}
td.warn{color:var(--amber);font-weight:600}td.fail{color:var(--red);font-weight:600}
"""

JS = """
(function(){
  var cards = Array.prototype.slice.call(document.querySelectorAll('article'));
  var buttons = Array.prototype.slice.call(document.querySelectorAll('nav button'));
  var search = document.getElementById('q'), empty = document.getElementById('empty');
  var current = 'all';
  function apply(){
    var words = search.value.toLowerCase().trim(), shown = 0;
    cards.forEach(function(c){
      var ok = (current === 'all' || c.dataset.tags.split(' ').indexOf(current) >= 0) &&
               (!words || c.dataset.text.indexOf(words) >= 0);
      c.hidden = !ok; if (ok) shown++;
    });
    buttons.forEach(function(b){ b.setAttribute('aria-pressed', b.dataset.filter === current); });
    empty.hidden = shown > 0;
  }
  buttons.forEach(function(b){
    b.addEventListener('click', function(){
      current = b.dataset.filter; history.replaceState(null, '', '#' + current); apply();
    });
  });
  search.addEventListener('input', apply);
  function fromHash(){
    var wanted = location.hash.slice(1);
    if (buttons.some(function(b){ return b.dataset.filter === wanted && !b.disabled; })) current = wanted;
    apply();
  }
  window.addEventListener('hashchange', fromHash);
  fromHash();
})();
"""
