#!/usr/bin/env python3
"""Golden fixture for spinemark: a small ResNet + DSNT network run in PyTorch.

Developer tool only (needs torch and numpy; never used to build, run or test the product):

    python3 tests/golden/make_golden.py --seed 1 --out tests/golden/golden_seed1.safetensors

Builds the network spinemark builds for the same config (torchvision-style names; BasicBlock
with dilation as in layers/resnet.cpp: the first block's conv1 keeps the previous dilation,
every other 3x3 conv uses the stage's dilation), runs one forward/backward pass in training
mode and 5 Adam steps, and writes one safetensors file (written here by hand, no extra
package) holding:

    input (N,1,H,W), target (N,K,2), mask (N,K)
    w.<name>      the initial weights and buffers (state_dict)
    out.heatmaps  (N,K,h,w) flat-softmax maps       out.coords (N,K,2)
    out.loss      ()  Euclidean + lambda*JS of the first pass
    grad.<name>   every parameter's gradient, and grad.input
    adam.losses   (5,) the loss before each of 5 Adam steps
    final.<name>  the state_dict after the 5 steps (BN running statistics included)

and the config as JSON in the metadata key "config".
"""
import argparse
import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-24


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, dilation_first, dilation, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, dilation_first, dilation_first, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.downsample = None
        if downsample:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class DsntResNet(nn.Module):
    """torchvision ResNet stem + BasicBlock stages + 1x1 conv (no bias) head; no fc."""

    def __init__(self, cfg):
        super().__init__()
        widths, blocks = cfg["widths"], cfg["blocks"]
        self.conv1 = nn.Conv2d(cfg["in_channels"], widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes, current, dilation = widths[0], 4, 1
        for s, (planes, n) in enumerate(zip(widths, blocks)):
            stride = 1 if s == 0 else 2
            previous = dilation
            if stride == 2 and current * 2 > cfg["output_stride"]:
                dilation *= stride
                stride = 1
            current *= stride
            layer = []
            for b in range(n):
                if b == 0:
                    layer.append(BasicBlock(inplanes, planes, stride, previous, dilation,
                                            stride != 1 or inplanes != planes))
                else:
                    layer.append(BasicBlock(planes, planes, 1, dilation, dilation, False))
                inplanes = planes
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*layer))
        self.head = nn.Module()
        self.head.weight = nn.Parameter(torch.empty(cfg["landmarks"], inplanes, 1, 1).uniform_(-0.3, 0.3))
        self.stages = len(widths)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for s in range(self.stages):
            x = getattr(self, "layer%d" % (s + 1))(x)
        logits = F.conv2d(x, self.head.weight)
        n, k, h, w = logits.shape
        p = F.softmax(logits.reshape(n, k, h * w), dim=-1).reshape(n, k, h, w)
        xs = (2 * torch.arange(w, dtype=x.dtype) + 1) / w - 1
        ys = (2 * torch.arange(h, dtype=x.dtype) + 1) / h - 1
        mu = torch.stack([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], dim=-1)
        return p, mu


def gaussian_maps(target, h, w, sigma):
    """Q (N,K,h,w): normalised Gaussians at the targets, sigma in heatmap pixels."""
    px = ((target[..., 0] + 1) * w - 1) / 2
    py = ((target[..., 1] + 1) * h - 1) / 2
    jj = torch.arange(w, dtype=torch.float64).view(1, 1, 1, w)
    ii = torch.arange(h, dtype=torch.float64).view(1, 1, h, 1)
    q = torch.exp(-((jj - px.double()[..., None, None]) ** 2 + (ii - py.double()[..., None, None]) ** 2) / (2 * sigma ** 2))
    return (q / q.sum(dim=(2, 3), keepdim=True)).to(target.dtype)


def kl(a, b):
    return (a * (torch.log(a + EPS) - torch.log(b + EPS))).sum(dim=(2, 3))


def dsnt_loss(p, mu, target, mask, sigma, lam):
    w = mask / mask.sum()
    eucl = torch.sqrt(((mu - target) ** 2).sum(-1))
    q = gaussian_maps(target, p.shape[2], p.shape[3], sigma)
    m = 0.5 * (p + q)
    js = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    return (w * eucl).sum() + lam * (w * js).sum()


def safetensors_write(path, tensors, metadata):
    header, offset, blobs = {}, 0, []
    dtypes = {np.float32: "F32", np.float64: "F64", np.int64: "I64"}
    for name, arr in tensors:
        arr = np.array(arr, order="C")  # (ascontiguousarray would turn 0-d into 1-d)
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtypes[arr.dtype.type], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    cfg = {"in_channels": 1, "widths": [8, 16, 16, 24], "blocks": [1, 2, 1, 1], "output_stride": 8, "landmarks": 3,
           "batch": 2, "height": 64, "width": 48, "sigma": 1.0, "lambda": 1.0, "lr": 1e-3, "adam_steps": 5}
    net = DsntResNet(cfg).float()
    # Randomise BN affine parameters and running stats so that the test sees them.
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.8, 1.2)
    x = torch.randn(cfg["batch"], 1, cfg["height"], cfg["width"])
    target = torch.empty(cfg["batch"], cfg["landmarks"], 2).uniform_(-0.8, 0.8)
    mask = torch.ones(cfg["batch"], cfg["landmarks"])
    mask[1, 0] = 0

    def arrays(prefix, sd):
        return [(prefix + k, v.detach().clone().cpu().numpy()) for k, v in sd.items()]  # copies: Adam updates in place

    tensors = [("input", x.numpy()), ("target", target.numpy()), ("mask", mask.numpy())]
    tensors += arrays("w.", net.state_dict())

    net.train()
    xg = x.clone().requires_grad_(True)
    p, mu = net(xg)
    loss = dsnt_loss(p, mu, target, mask, cfg["sigma"], cfg["lambda"])
    loss.backward()
    tensors += [("out.heatmaps", p.detach().numpy()), ("out.coords", mu.detach().numpy()),
                ("out.loss", loss.detach().numpy().reshape(()))]
    tensors += [("grad." + k, v.grad.clone().numpy()) for k, v in net.named_parameters()]
    tensors.append(("grad.input", xg.grad.clone().numpy()))

    # 5 Adam steps from the initial weights (the pass above already moved the BN running
    # statistics, exactly as the C++ side's first pass will).
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
    losses = []
    for _ in range(cfg["adam_steps"]):
        opt.zero_grad()
        p, mu = net(x)
        loss = dsnt_loss(p, mu, target, mask, cfg["sigma"], cfg["lambda"])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    tensors.append(("adam.losses", np.array(losses, dtype=np.float32)))
    tensors += arrays("final.", net.state_dict())
    safetensors_write(args.out, tensors, {"config": json.dumps(cfg), "seed": str(args.seed),
                                          "torch": torch.__version__})
    print("wrote %s: loss %.6f, adam losses %s" % (args.out, tensors[[n for n, _ in tensors].index("out.loss")][1], losses))


if __name__ == "__main__":
    main()
