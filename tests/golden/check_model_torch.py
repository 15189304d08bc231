#!/usr/bin/env python3
"""Check a trained spinemark model's step 1 against PyTorch.

Developer tool only (needs torch and numpy; never used to build, run or test the product):

    build/bin/spinemark predict --model MODEL --image FILM.png --out PRED
    /usr/bin/python3 tests/golden/check_model_torch.py --model MODEL --image FILM.png \\
        --prediction PRED/FILM.json [--tol 1e-3]

Reads MODEL/model.json, builds the detect and coarse networks in PyTorch (the ResNet + DSNT
network of make_golden.py, imported from there), loads detect.safetensors and coarse.safetensors
by name, reads the film (grayscale PNG, 8- or 16-bit, non-interlaced), letterboxes and
standardises it as models/geometry/letterbox.cpp and models/pipeline/pipeline.cpp do, runs both networks
in eval mode in float64, maps the DSNT coordinates back to film pixels and compares them with
the prediction file: "step1_landmarks" (the coarse network, schema landmark order) always, and
the detection centres when the file carries them (key "centres", "step1_centres" or
"detect_centres": {vertebra: [x, y] or null}). Prints the largest absolute difference in pixels
per network; exits 0 only when every compared one is <= --tol, 1 when one is not, 2 when the
inputs cannot be read or do not fit together.
"""
import argparse
import json
import math
import os
import struct
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import DsntResNet  # noqa: E402  (the one PyTorch twin of our network)

CENTRE_KEYS = ("centres", "step1_centres", "detect_centres")


class InputError(Exception):
    """The inputs cannot be read or do not fit together (exit status 2)."""


# ---- files ------------------------------------------------------------------------------------

def safetensors_read(path):
    """{name: numpy array} of a safetensors file (little-endian, as the format prescribes)."""
    dtypes = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1"}
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise InputError("%s: too short for a safetensors file" % path)
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in dtypes:
            raise InputError("%s: tensor %s has dtype %s, not read here" % (path, name, entry["dtype"]))
        begin, end = entry["data_offsets"]
        dt = np.dtype(dtypes[entry["dtype"]])
        if end - begin != dt.itemsize * math.prod(entry["shape"]) or end > len(data):
            raise InputError("%s: tensor %s: data offsets do not fit its shape" % (path, name))
        out[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(entry["shape"])
    return out


def png_chunks(blob, path):
    """(type, body) of every chunk up to IEND; CRCs are not checked (zlib catches damaged data)."""
    if blob[:8] != b"\x89PNG\r\n\x1a\n":
        raise InputError("%s: not a PNG file (this tool reads PNG only)" % path)
    pos = 8
    while pos + 8 <= len(blob):
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        yield kind, blob[pos + 8:pos + 8 + length]
        if kind == b"IEND":
            return
        pos += 12 + length


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def png_unfilter_row(kind, line, prev, bpp):
    """One reconstructed scanline (uint8) from its filtered bytes and the previous scanline."""
    if kind == 0:
        return line.copy()
    if kind == 1:  # Sub: a running sum per byte position within a pixel
        out = np.empty_like(line)
        for j in range(bpp):
            out[j::bpp] = (np.cumsum(line[j::bpp], dtype=np.uint64) & 0xFF).astype(np.uint8)
        return out
    if kind == 2:  # Up
        return ((line.astype(np.uint16) + prev) & 0xFF).astype(np.uint8)
    # Average and Paeth depend on the byte just reconstructed: plain loops (our writer never
    # uses them, so their slowness does not matter for our films).
    cur, up = line.tolist(), prev.tolist()
    for i in range(len(cur)):
        a = cur[i - bpp] if i >= bpp else 0
        c = up[i - bpp] if i >= bpp else 0
        pred = (a + up[i]) // 2 if kind == 3 else paeth(a, up[i], c)
        cur[i] = (cur[i] + pred) & 0xFF
    return np.array(cur, dtype=np.uint8)


def png_read_gray(path):
    """(H, W) float32 of a grayscale 8/16-bit non-interlaced PNG, values as stored (0..255 or
    0..65535), which is what models/image/image_io.cpp hands the pipeline for such a file."""
    with open(path, "rb") as f:
        blob = f.read()
    ihdr, idat = None, []
    for kind, body in png_chunks(blob, path):
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    if ihdr is None:
        raise InputError("%s: no IHDR chunk" % path)
    w, h, depth, colour, _, _, interlace = ihdr
    if colour != 0 or depth not in (8, 16) or interlace != 0:
        raise InputError("%s: colour type %d, %d bits, interlace %d: only grayscale 8/16-bit "
                         "non-interlaced PNG is read here" % (path, colour, depth, interlace))
    bpp = depth // 8
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    if raw.size < h * (w * bpp + 1):
        raise InputError("%s: image data shorter than %dx%d" % (path, w, h))
    rows = raw[:h * (w * bpp + 1)].reshape(h, w * bpp + 1)
    out = np.empty((h, w * bpp), dtype=np.uint8)
    prev = np.zeros(w * bpp, dtype=np.uint8)
    for y in range(h):
        if rows[y, 0] > 4:
            raise InputError("%s: row %d has filter type %d" % (path, y, rows[y, 0]))
        out[y] = png_unfilter_row(int(rows[y, 0]), rows[y, 1:], prev, bpp)
        prev = out[y]
    if depth == 16:  # big-endian samples
        return (out[:, 0::2].astype(np.uint32) << 8 | out[:, 1::2]).astype(np.float32)
    return out.astype(np.float32)


# ---- letterbox and standardisation (models/geometry/letterbox.cpp, models/pipeline/pipeline.cpp) -------

def letterbox_fit(src_w, src_h, dst_w, dst_h):
    """(scale, offset_x, offset_y): one scale, content centred; Python floats are C++ doubles."""
    scale = min(dst_w / src_w, dst_h / src_h)
    return scale, 0.5 * (dst_w - scale * src_w), 0.5 * (dst_h - scale * src_h)


def axis_taps(n_src, n_dst, scale, offset):
    """Per output index: (first source index, weights, pad weight), formula for formula as
    axis_taps in letterbox.cpp (area overlap when shrinking, linear interpolation otherwise)."""
    taps = []
    for q in range(n_dst):
        if scale < 1.0:
            a, b = (q - offset) / scale, (q + 1 - offset) / scale
            length = b - a
            i0, i1 = max(0, math.floor(a)), min(n_src - 1, math.ceil(b) - 1)
            weights, covered = [], 0.0
            for i in range(i0, i1 + 1):
                w = max((min(b, float(i + 1)) - max(a, float(i))) / length, 0.0)
                weights.append(w)
                covered += w
            taps.append((i0, weights, max(0.0, 1.0 - covered)))
            continue
        p = (q + 0.5 - offset) / scale - 0.5  # source pixel-centre coordinate
        if p < -0.5 or p > n_src - 0.5:
            taps.append((0, [], 1.0))
            continue
        pc = min(max(p, 0.0), float(n_src - 1))
        i0 = min(int(pc), max(n_src - 2, 0))
        f = pc - i0
        taps.append((i0, [1.0 - f] + ([f] if i0 + 1 < n_src else []), 0.0))
    return taps


def resample_axis0(src, taps, pad):
    """Output row r = pad weight * pad + sum_k w_k * src[first + k], accumulated in the order the
    C++ loop uses (float64, tap by tap), for all columns at once."""
    out = np.empty((len(taps), src.shape[1]), dtype=np.float64)
    for r, (first, weights, pad_w) in enumerate(taps):
        v = np.full(src.shape[1], pad_w * pad, dtype=np.float64)
        for k, w in enumerate(weights):
            v = v + w * src[first + k]
        out[r] = v
    return out


def letterbox_image(film, dst_w, dst_h, pad=0.0):
    """(dst_h, dst_w) float32: horizontal pass into float64, vertical pass, one rounding to float32."""
    h, w = film.shape
    scale, ox, oy = letterbox_fit(w, h, dst_w, dst_h)
    src = film.astype(np.float64)  # float32 -> double, as `t.w[k] * src.at(...)` promotes
    tmp = resample_axis0(src.T, axis_taps(w, dst_w, scale, ox), pad).T  # (h, dst_w)
    return resample_axis0(tmp, axis_taps(h, dst_h, scale, oy), pad).astype(np.float32)


def image_standardise(img):
    """Zero mean, unit standard deviation; float64 statistics summed sequentially (cumsum keeps
    the C++ loop's order, np.sum would sum pairwise), result rounded to float32."""
    v = img.astype(np.float64).ravel()
    n = float(v.size)
    mean = np.cumsum(v)[-1] / n
    sq = np.cumsum((v - mean) * (v - mean))[-1]
    inv = 1.0 / max(math.sqrt(sq / n), 1e-6)
    return ((v - mean) * inv).astype(np.float32).reshape(img.shape)


def letterbox_inverse(x, y, fit):
    scale, ox, oy = fit
    return (x + 0.5 - ox) / scale - 0.5, (y + 0.5 - oy) / scale - 0.5


def dsnt_denormalise(c, size):
    """Normalised DSNT coordinate (pixel-centre grid in (-1, 1)) -> input pixels (layers/dsnt.h)."""
    return ((c + 1.0) * size - 1.0) / 2.0


# ---- networks ---------------------------------------------------------------------------------

def golden_config(spec, what):
    """make_golden.py's config for one network of model.json, defaults as dsnt_net_config_from_json.
    DsntResNet covers BasicBlock stages with the stem as wide as the first stage, dilated."""
    depth = spec.get("depth", 0)
    blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}.get(depth, spec.get("blocks"))
    widths = spec.get("widths")
    unsupported = []
    if depth == 50 or spec.get("block", "basic") != "basic":
        unsupported.append("bottleneck blocks")
    if spec.get("stem_width", 0) not in (0, widths[0]):
        unsupported.append("stem_width %d != widths[0]" % spec["stem_width"])
    if not spec.get("dilate", True):
        unsupported.append("dilate false")
    if unsupported:
        raise InputError("%s: not covered by make_golden.DsntResNet: %s" % (what, ", ".join(unsupported)))
    return {"in_channels": spec.get("in_channels", 1), "widths": widths, "blocks": blocks,
            "output_stride": spec.get("output_stride", 8), "landmarks": spec["landmarks"]}


def network_load(spec, weights_path, what):
    """The network in float64, eval mode, every state_dict entry taken from the file by name."""
    net = DsntResNet(golden_config(spec, what)).double().eval()
    tensors = safetensors_read(weights_path)
    state = net.state_dict()
    missing, extra = sorted(set(state) - set(tensors)), sorted(set(tensors) - set(state))
    if missing or extra:
        raise InputError("%s: names differ from the network's: missing %s, unexpected %s"
                         % (weights_path, missing[:5], extra[:5]))
    with torch.no_grad():
        for name, t in state.items():
            if tuple(tensors[name].shape) != tuple(t.shape):
                raise InputError("%s: %s has shape %s, the network wants %s"
                                 % (weights_path, name, list(tensors[name].shape), list(t.shape)))
            t.copy_(torch.from_numpy(tensors[name].astype(np.float64 if t.is_floating_point() else np.int64)))
    return net


def step1_points(net, spec, film):
    """Film-pixel points (K, 2) of one step-1 network, as step1_stage in pipeline.cpp computes them."""
    in_w, in_h = spec["input"]
    fit = letterbox_fit(film.shape[1], film.shape[0], in_w, in_h)
    x = image_standardise(letterbox_image(film, in_w, in_h))
    with torch.no_grad():
        _, mu = net(torch.from_numpy(x.astype(np.float64))[None, None])
    mu = mu[0].numpy()
    return np.array([letterbox_inverse(dsnt_denormalise(cx, in_w), dsnt_denormalise(cy, in_h), fit) for cx, cy in mu])


# ---- comparison -------------------------------------------------------------------------------

def compare(names, ours, theirs, what):
    """Largest |difference| in px over both coordinates, and the landmark where it is; a point
    the prediction leaves null (or that is not finite on either side) counts as infinite."""
    worst, where = 0.0, names[0]
    for name, p in zip(names, ours):
        q = theirs.get(name)
        d = math.inf if q is None or not np.all(np.isfinite(p)) else float(np.max(np.abs(p - np.asarray(q, float))))
        if d > worst or math.isnan(d):
            worst, where = (math.inf if math.isnan(d) else d), name
    print("%-7s %3d points, max |diff| %.3e px (at %s)" % (what, len(names), worst, where))
    return worst


def prediction_check(pred, schema, film):
    if pred.get("schema") not in (None, schema["name"]):
        raise InputError("prediction is for schema '%s', the model's is '%s'" % (pred["schema"], schema["name"]))
    size = pred.get("image_size")
    if size is not None and list(size) != [film.shape[1], film.shape[0]]:
        raise InputError("prediction was made on a %dx%d film, this one is %dx%d"
                         % (size[0], size[1], film.shape[1], film.shape[0]))
    if not isinstance(pred.get("step1_landmarks"), dict):
        raise InputError("prediction has no 'step1_landmarks' object")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model folder (model.json + *.safetensors)")
    ap.add_argument("--image", required=True, help="the film the prediction was made on (PNG)")
    ap.add_argument("--prediction", required=True, help="spinemark predict's JSON for that film")
    ap.add_argument("--tol", type=float, default=1e-3, help="largest allowed difference in px (default 1e-3)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # a check, not a benchmark: leave the machine's cores to others

    try:
        with open(os.path.join(args.model, "model.json")) as f:
            model = json.load(f)
        if model.get("format") != "spinemark.model":
            raise InputError("%s/model.json: 'format' is not \"spinemark.model\"" % args.model)
        with open(args.prediction) as f:
            pred = json.load(f)
        schema = model["schema"]
        film = png_read_gray(args.image)
        prediction_check(pred, schema, film)
        landmarks = ["%s.%s" % (v["name"], c) for v in schema["vertebrae"] for c in v["corners"]]
        vertebrae = [v["name"] for v in schema["vertebrae"]]
        nets = {stage: network_load(model[stage], os.path.join(args.model, stage + ".safetensors"), stage)
                for stage in ("detect", "coarse")}
    except (InputError, OSError, KeyError, ValueError, zlib.error) as e:
        print("check_model_torch: %s" % e, file=sys.stderr)
        return 2

    print("film %s: %dx%d; model %s (schema %s, preset %s); tolerance %g px"
          % (args.image, film.shape[1], film.shape[0], args.model, schema["name"], model.get("preset"), args.tol))
    worst = [compare(landmarks, step1_points(nets["coarse"], model["coarse"], film), pred["step1_landmarks"], "coarse")]
    centres = step1_points(nets["detect"], model["detect"], film)
    key = next((k for k in CENTRE_KEYS if isinstance(pred.get(k), dict)), None)
    if key is None:
        print("detect  %3d centres computed; the prediction carries none (%s): not compared"
              % (len(vertebrae), "/".join(CENTRE_KEYS)))
    else:
        worst.append(compare(vertebrae, centres, pred[key], "detect"))
    ok = all(w <= args.tol for w in worst)
    print("PASS" if ok else "FAIL: difference above %g px" % args.tol)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
