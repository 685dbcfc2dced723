
// parsed on the first card opened: ~1.5 MB for 1,000 trials, no need to pay for it before the charts show
let TRIALS=null;
const trial=n=>(TRIALS??=JSON.parse(document.getElementById('trial-data').textContent))[n];
const esc = s => String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
function kv(obj){return '<table>'+Object.entries(obj).map(([k,v])=>'<tr><th>'+esc(k)+'</th><td>'+esc(v)+'</td></tr>').join('')+'</table>';}
function costTable(c){
  if(!c||!Object.keys(c).length) return '<p class="note">no cost breakdown recorded for this trial</p>';
  const rows=Object.entries(c);
  if(rows.every(([k,v])=>v&&typeof v==='object'&&!Array.isArray(v))){
    const cols=[...new Set(rows.flatMap(([k,v])=>Object.keys(v)))];
    return '<table><tr><th></th>'+cols.map(x=>'<th>'+esc(x)+'</th>').join('')+'</tr>'+rows.map(([k,v])=>'<tr><th>'+esc(k)+'</th>'+cols.map(x=>'<td class="num">'+esc(v[x]??'')+'</td>').join('')+'</tr>').join('')+'</table>';}
  return kv(Object.fromEntries(rows.map(([k,v])=>[k,typeof v==='object'?JSON.stringify(v):v])));
}
function showCard(n){
  const t=trial(n); if(!t) return;
  const card=document.getElementById('card');
  card.querySelector('.body').innerHTML=
    '<h3>trial '+esc(n)+(t.front?' · Pareto':'')+'</h3><p>'+esc(t.summary)+'</p>'+
    '<h4>metrics</h4>'+kv(t.metrics)+'<h4>choices</h4>'+kv(t.params)+
    '<h4>cost breakdown</h4>'+costTable(t.cost)+
    '<h4>training curve</h4><div id="card-curve" style="height:240px"></div>'+
    '<h4>reproduce</h4><code class="cmd">'+esc(t.command)+'</code>'+
    '<h4>spec</h4><pre>'+esc(t.spec)+'</pre>';
  card.hidden=false; card.dataset.trial=n;
  const h=t.history||[];
  if(h.length){
    const ep=h.map((r,i)=>r.epoch??i+1), tr=[];
    if(h.some(r=>r.accuracy!=null)) tr.push({x:ep,y:h.map(r=>r.accuracy),name:'accuracy',mode:'lines+markers'});
    if(h.some(r=>r.train_loss!=null)) tr.push({x:ep,y:h.map(r=>r.train_loss),name:'train loss',yaxis:'y2',mode:'lines+markers'});
    Plotly.newPlot('card-curve',tr,{template:'none',margin:{l:45,r:45,t:10,b:35},xaxis:{title:{text:'epoch'}},
      yaxis:{title:{text:'accuracy'}},yaxis2:{title:{text:'loss'},overlaying:'y',side:'right'},
      legend:{orientation:'h',y:1.15}},{displaylogo:false});
  } else document.getElementById('card-curve').outerHTML='<p class="note">no per-epoch history recorded</p>';
}
document.querySelectorAll('.js-plotly-plot.pareto').forEach(d=>d.on('plotly_click',e=>{
  const p=e.points[0]; if(p&&p.customdata!=null) showCard(p.customdata);}));
document.querySelector('#card .close').onclick=()=>{document.getElementById('card').hidden=true;};
const rows=document.querySelector('#trials tbody');  // one delegated listener, not one per row
if(rows) rows.addEventListener('click',e=>{const r=e.target.closest('tr');if(r) showCard(r.dataset.n);});
const table=document.getElementById('trials');
if(table){
  const body=table.tBodies[0];
  table.querySelectorAll('th').forEach((th,i)=>th.onclick=()=>{
    const asc=!th.classList.contains('asc');
    table.querySelectorAll('th').forEach(x=>x.classList.remove('asc','desc'));
    th.classList.add(asc?'asc':'desc');
    const key=r=>{const v=r.cells[i].dataset.v??r.cells[i].textContent;const f=parseFloat(v);return isNaN(f)?v:f;};
    const rows=[...body.rows].sort((a,b)=>{const x=key(a),y=key(b);
      if(typeof x!==typeof y) return typeof x==='number'?-1:1; return (x<y?-1:x>y?1:0)*(asc?1:-1);});
    rows.forEach(r=>body.appendChild(r));});
  document.getElementById('filter').oninput=e=>{
    const q=e.target.value.toLowerCase();let shown=0;
    [...body.rows].forEach(r=>{const ok=!q||r.textContent.toLowerCase().includes(q);r.hidden=!ok;shown+=ok;});
    document.getElementById('shown').textContent=shown;};
}
Promise.all(window.PLOTS||[]).then(()=>{document.body.dataset.plots='drawn';});
