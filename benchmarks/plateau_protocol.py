"""A stand-alone FuxiCTR-like training loop (lr x0.1 on every epoch without improvement, stop at patience 2,
clip 10, embedding init N(0, 1e-4), Xavier-normal linear layers, coupled embedding L2), written to find the
cause of the plateau before the trainer had the `bars` protocol; kept because the logs in
benchmarks/results/plateau/ came from it. `fgraph train --protocol bars` now does the same.

    python benchmarks/plateau_protocol.py fignn --opt steps=17 --opt gru=false --opt share_weights=false \\
        --opt readout_gate=flat --init 1e-4 --l2 1e-3 --dense-init xavier_normal
"""
import argparse, json, time, torch, numpy as np, warnings
warnings.filterwarnings("ignore")
import torch.nn.functional as F
from fgraph.api import encode_dataset
from fgraph.models import build_model
from fgraph.data.loader import FieldLoader
from fgraph.train.metrics import binary_metrics
ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("--opt", action="append", default=[])
ap.add_argument("--init", default="xavier"); ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--l2", type=float, default=0.0)
ap.add_argument("--emb-lr-mult", type=float, default=1.0, help="embedding learning rate = lr x this")
ap.add_argument("--epochs", type=int, default=100); ap.add_argument("--patience", type=int, default=2)
ap.add_argument("--schedule", default="bars"); ap.add_argument("--clip", type=float, default=10.0)
ap.add_argument("--dense-init", default="default"); ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--embed-dim", type=int, default=10); ap.add_argument("--dataset", default="frappe")
a = ap.parse_args()
torch.set_num_threads(1); torch.manual_seed(a.seed)
enc, data = encode_dataset(a.dataset)
opts = {"embed_dim": a.embed_dim}
for o in a.opt:
    k, v = o.split("=")
    try: opts[k] = json.loads(v)
    except json.JSONDecodeError: opts[k] = v
m = build_model(a.model, enc.space_, **opts)
emb = m.embedding_parameters(); emb_ids = {id(p) for p in emb}
if a.init != "xavier":
    for p in emb: torch.nn.init.normal_(p, std=float(a.init))
if a.dense_init == "xavier_normal":
    for mod in m.modules():
        if isinstance(mod, torch.nn.Linear):
            torch.nn.init.xavier_normal_(mod.weight)
            if mod.bias is not None: torch.nn.init.zeros_(mod.bias)
rest = [p for p in m.parameters() if id(p) not in emb_ids]
opt = torch.optim.Adam([{"params": emb, "weight_decay": a.l2, "lr": a.lr * a.emb_lr_mult}, {"params": rest}],
                       lr=a.lr)
loader = FieldLoader(data["train"], 4096, shuffle=True, seed=a.seed)
def evaluate(split):
    m.eval()
    with torch.no_grad():
        pred = torch.cat([torch.sigmoid(m(b)) for b in FieldLoader(data[split], 8192)]).numpy()
    return binary_metrics(data[split].y.numpy(), pred)
print(vars(a), opts, flush=True)
best, best_state, counter, t0 = -1, None, 0, time.time()
for ep in range(1, a.epochs + 1):
    m.train(); tl = n = 0
    for b in loader:
        opt.zero_grad(); loss = m.loss(b, F.binary_cross_entropy_with_logits)
        loss.backward()
        if a.clip: torch.nn.utils.clip_grad_norm_(m.parameters(), a.clip)
        opt.step(); tl += float(loss); n += 1
    v = evaluate("valid")
    lr_now = opt.param_groups[0]["lr"]
    if v["auc"] > best:
        best, counter = v["auc"], 0; best_state = {k: t.clone() for k, t in m.state_dict().items()}; mark = "*"
    else:
        counter += 1; mark = ""
        if a.schedule == "bars":
            for g in opt.param_groups: g["lr"] = max(g["lr"] * 0.1, 1e-6)
    print(f"ep {ep:3d} loss {tl/n:.4f} vauc {v['auc']:.4f} vll {v['logloss']:.4f} lr {lr_now:.0e} {time.time()-t0:.0f}s {mark}", flush=True)
    if counter >= a.patience: break
m.load_state_dict(best_state)
t = evaluate("test")
print(f"TEST auc {t['auc']:.4f} logloss {t['logloss']:.4f} best_valid {best:.4f} epochs {ep}", flush=True)
