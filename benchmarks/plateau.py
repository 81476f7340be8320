"""Per-epoch diagnostics of the first-order plateau (issue 11): validation AUC/logloss, the embeddings' RMS,
and the mean gradient norm of each top-level module of the model, under plain Adam (batch 4096, embedding 10).

    python benchmarks/plateau.py MODEL [INIT] [LR] [EPOCHS]
    # INIT: "xavier" (the model's own) or a normal std such as 1e-4; logs in benchmarks/results/plateau/
"""
import sys, time, torch, numpy as np, warnings
warnings.filterwarnings("ignore")
torch.set_num_threads(1)
from fgraph.api import encode_dataset
from fgraph.models import build_model
from fgraph.data.loader import FieldLoader
from fgraph.train.metrics import binary_metrics
import torch.nn.functional as F
model_name = sys.argv[1]; init = sys.argv[2] if len(sys.argv) > 2 else "xavier"; lr = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 12
torch.manual_seed(0)
enc, data = encode_dataset("frappe")
opts = {"embed_dim": 10}
m = build_model(model_name, enc.space_, **opts)
emb = m.embedding_parameters()
if init != "xavier":
    for p in emb: torch.nn.init.normal_(p, std=float(init))
groups = {}
for name, p in m.named_parameters():
    key = name.split(".")[0]
    groups.setdefault(key, []).append(p)
opt = torch.optim.Adam(m.parameters(), lr=lr)
loader = FieldLoader(data["train"], 4096, shuffle=True, seed=0)
vl = FieldLoader(data["valid"], 8192)
print(model_name, "init", init, "lr", lr, {k: sum(p.numel() for p in v) for k, v in groups.items()}, flush=True)
for ep in range(1, epochs + 1):
    m.train(); gn = {k: 0.0 for k in groups}; steps = 0; tl = 0
    for b in loader:
        opt.zero_grad(); loss = m.loss(b, F.binary_cross_entropy_with_logits); loss.backward()
        for k, ps in groups.items():
            gn[k] += float(torch.sqrt(sum((p.grad ** 2).sum() for p in ps if p.grad is not None)))
        opt.step(); steps += 1; tl += float(loss)
    m.eval()
    with torch.no_grad():
        pred = torch.cat([torch.sigmoid(m(b)) for b in vl]).numpy()
    met = binary_metrics(data["valid"].y.numpy(), pred)
    W = emb[0].detach()
    used = torch.unique(data["train"].ids.long() + torch.tensor(enc.space_.offsets)).long()
    rms = float(W[used].pow(2).mean().sqrt()) if W.size(0) > used.max() else float(W.pow(2).mean().sqrt())
    print(f"ep {ep:2d} loss {tl/steps:.4f} vauc {met['auc']:.4f} vll {met['logloss']:.4f} emb_rms {rms:.4f} " + " ".join(f"g[{k}] {v/steps:.2e}" for k, v in gn.items()), flush=True)
