"""The DSP kernels of runtime_c/opt/dsp (nn_conv_s8, nn_conv_dw_s8) and requant_dsp.h, byte for
byte against the portable kernels, over geometries chosen to reach every path: 1x1 with unit
and larger strides, in place, channel counts 1..33 (groups of four taps and the taps after
them), 3x3 windows inside, at the borders and on inputs narrower than a word, pairs of output
positions that wrap to the next row and a last position alone, odd output-channel counts,
grouped, dilated and batched convolutions, depthwise rows wider than the accumulator buffer,
narrowed activation ranges and requantization constants the fast path must refuse.

One C driver fills every case from a seeded generator and prints each output in hex; the host
runs it with the portable kernels (src/conv) and with the optimized ones built without the DSP
extension (their C stand-ins for the instructions), each DSP target under emulation with the
optimized ones. Without a target's toolchain or emulator those tests skip (fail under CI=true).
"""

import os
import random
import shutil
import subprocess

import pytest

from codegen import cross
from codegen.paths import RUNTIME_DIR
from codegen.targets import load_target, target_names
from test_targets import need

DSP_TARGETS = [t for t in target_names() if t != "host" and load_target(t)["features"]["dsp"]]
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
KERNELS = ("nn_conv_s8.c", "nn_conv_dw_s8.c")

# mode bits: the output overwrites the input, depthwise, requantization constants at their
# edges (some outside the fast path), a narrowed activation range, no scratch (depthwise)
IN_PLACE, DEPTHWISE, EDGES, NARROW, NO_SCRATCH = 1, 2, 4, 8, 16
FIELDS = "batch cin ih iw cout groups kh kw sh sw dh dw pt pl pb pr mode".split()


def out_size(case: tuple) -> tuple[int, int]:
    c = dict(zip(FIELDS, case))
    oh = (c["ih"] + c["pt"] + c["pb"] - ((c["kh"] - 1) * c["dh"] + 1)) // c["sh"] + 1
    ow = (c["iw"] + c["pl"] + c["pr"] - ((c["kw"] - 1) * c["dw"] + 1)) // c["sw"] + 1
    return oh, ow


def conv_cases() -> list[tuple]:
    r = random.Random(3)
    cases = []
    add = lambda *c: cases.append(c)  # noqa: E731
    # the benchmark models' layer classes, at smaller sizes
    add(1, 1, 49, 10, 64, 1, 10, 4, 2, 2, 1, 1, 4, 1, 5, 1, 0)  # DS-CNN's first convolution
    add(1, 64, 25, 5, 64, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, IN_PLACE)  # its pointwise layers
    add(1, 16, 12, 12, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0)  # ResNet-8
    add(1, 3, 12, 12, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0)
    add(1, 16, 12, 12, 32, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0)
    add(1, 16, 12, 12, 32, 1, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 0)
    add(1, 3, 24, 24, 8, 1, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 0)  # MobileNet's first convolution
    add(1, 8, 12, 12, 16, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0)
    add(1, 128, 3, 3, 128, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, IN_PLACE)
    # 1x1: channel counts, in place, odd positions, strides and padding
    for c in (1, 2, 3, 4, 5, 7, 9, 33):
        for h, w in ((1, 1), (1, 3), (3, 3), (2, 7)):
            add(1, c, h, w, c, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, IN_PLACE | r.choice([0, EDGES, NARROW]))
            add(1, c, h, w, c + 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, r.choice([0, EDGES, NARROW]))
            add(1, c, h + 1, w + 2, c + 2, 1, 1, 1, 2, 2, 1, 1, 1, 0, 0, 1, r.choice([0, EDGES, NARROW]))
    # 3x3: input channels, inputs narrower than a word, strides, padding on any side
    for cin in (1, 2, 3, 4, 5, 7, 8, 17):
        for ih, iw in ((3, 3), (4, 4), (5, 4), (3, 7), (6, 5)):
            for s in (1, 2, 3):
                pads = r.choice([(0, 0, 0, 0), (1, 1, 1, 1), (0, 0, 1, 1), (2, 1, 0, 2)])
                add(1, cin, ih, iw, r.choice([1, 2, 3, 6]), 1, 3, 3, s, s, 1, 1, *pads,
                    r.choice([0, EDGES, NARROW, EDGES | NARROW]))
    for cin in (1, 3, 4, 6):
        add(1, cin, 9, 8, 5, 1, 3, 3, 1, 1, 2, 1, 1, 1, 2, 1, 0)  # dilated rows
        add(2, cin, 7, 7, 4, 1, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, EDGES)  # a batch, unequal strides
        add(1, 2 * cin, 7, 6, 6, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, NARROW)  # groups
    # anything else: seeded shapes, strides, dilations, groups and padding
    for _ in range(120):
        groups = r.choice([1, 1, 1, 2, 3])
        cin, cout = groups * r.randint(1, 9), groups * r.randint(1, 7)
        kh, kw, dh, dw = r.randint(1, 4), r.randint(1, 4), r.choice([1, 1, 2]), r.choice([1, 1, 2, 3])
        ih, iw = r.randint((kh - 1) * dh + 1, 12), r.randint((kw - 1) * dw + 1, 12)
        add(r.choice([1, 1, 1, 2]), cin, ih, iw, cout, groups, kh, kw, r.randint(1, 3), r.randint(1, 3), dh, dw,
            *[r.choice([0, 0, 1, 2]) for _ in range(4)], r.choice([0, 0, EDGES, NARROW, EDGES | NARROW]))
    return cases


def depthwise_cases() -> list[tuple]:
    r = random.Random(4)
    cases = [(1, 64, 25, 5, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, DEPTHWISE | IN_PLACE),  # DS-CNN
             (1, 8, 24, 24, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, DEPTHWISE | IN_PLACE),  # MobileNet
             (1, 16, 24, 24, 16, 16, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, DEPTHWISE | IN_PLACE)]
    for ih, iw in ((3, 3), (3, 4), (4, 2), (5, 5), (25, 5), (6, 100), (2, 130)):  # rows wider than the buffer
        for s in (1, 2):
            for pads in ((0, 0, 0, 0), (1, 1, 1, 1), (0, 0, 1, 1)):
                if ih + pads[0] + pads[2] < 3 or iw + pads[1] + pads[3] < 3:
                    continue
                oh, ow = out_size((1, 3, ih, iw, 3, 3, 3, 3, s, s, 1, 1, *pads, 0))
                mode = DEPTHWISE | r.choice([0, EDGES, NARROW])
                if pads == (0, 0, 0, 0) and r.random() < 0.5:
                    mode |= NO_SCRATCH
                elif oh * ow <= ih * iw:
                    mode |= IN_PLACE
                cases.append((1, 3, ih, iw, 3, 3, 3, 3, s, s, 1, 1, *pads, mode))
    for _ in range(80):
        c = r.randint(1, 9)
        kh, kw = r.choice([(3, 3), (3, 3), (1, 1), (2, 3), (5, 5), (3, 1)])
        sh = sw = r.choice([1, 1, 2])
        if r.random() < 0.2:
            sh, sw = r.randint(1, 3), r.randint(1, 3)
        dh = dw = 1 if r.random() < 0.85 else 2
        ih, iw = r.randint((kh - 1) * dh + 1, 20), r.randint((kw - 1) * dw + 1, 20)
        pads = r.choice([(0, 0, 0, 0), (1, 1, 1, 1), (0, 0, 1, 1), (1, 1, 0, 0), (2, 1, 0, 2)])
        case = (r.choice([1, 1, 2]), c, ih, iw, c, c, kh, kw, sh, sw, dh, dw, *pads, 0)
        oh, ow = out_size(case)
        mode = DEPTHWISE | r.choice([0, 0, EDGES, NARROW])
        if pads == (0, 0, 0, 0) and r.random() < 0.5:
            mode |= NO_SCRATCH
        elif oh * ow <= ih * iw and r.random() < 0.5:
            mode |= IN_PLACE
        cases.append(case[:-1] + (mode,))
    return cases


CASES = conv_cases() + depthwise_cases()

DRIVER = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nn.h"
#include "requant.h"
#include "requant_dsp.h"

static uint32_t seed;
static uint32_t next(void)
{
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
}
static int32_t between(int32_t lo, int32_t hi) /* lo..hi */
{
    return lo + (int32_t)(next() % (uint32_t)(hi - lo + 1));
}

#define BYTES 20000
static int8_t input[BYTES], output[BYTES], weights[BYTES];
static int32_t bias[512], multiplier[512];
static int8_t shift[512];
static int32_t scratch[BYTES / 4];

static void dump(const int8_t *p, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        printf("%02x", (unsigned)(uint8_t)p[i]);
    }
    printf("\n");
}

static void conv(int32_t id, const int32_t *c)
{
    nn_conv_s8_params p;
    nn_conv_geometry *g = &p.g;
    const int32_t mode = c[16];
    int32_t i, k;
    int8_t *out = (mode & 1) ? input : output;
    seed = 977u * (uint32_t)id + 1u;
    g->batch = c[0]; g->in_channels = c[1]; g->in_h = c[2]; g->in_w = c[3]; g->out_channels = c[4];
    g->groups = c[5]; g->kernel_h = c[6]; g->kernel_w = c[7]; g->stride_h = c[8]; g->stride_w = c[9];
    g->dilation_h = c[10]; g->dilation_w = c[11]; g->pad_top = c[12]; g->pad_left = c[13];
    g->out_h = (c[2] + c[12] + c[14] - ((c[6] - 1) * c[10] + 1)) / c[8] + 1;
    g->out_w = (c[3] + c[13] + c[15] - ((c[7] - 1) * c[11] + 1)) / c[9] + 1;
    k = c[1] / c[5] * c[6] * c[7];
    p.input_offset = between(-127, 128);
    p.output_offset = between(-128, 127);
    p.act_min = (mode & 8) ? between(-128, 0) : -128;
    p.act_max = (mode & 8) ? between(p.act_min, 127) : 127;
    for (i = 0; i < g->batch * g->in_channels * g->in_h * g->in_w; ++i) {
        input[i] = (int8_t)between(-128, 127);
    }
    for (i = 0; i < g->out_channels * k; ++i) {
        weights[i] = (int8_t)between(-127, 127);
    }
    for (i = 0; i < g->out_channels; ++i) {
        bias[i] = between(-20000, 20000);
        multiplier[i] = between(1 << 30, 0x7FFFFFFF);
        shift[i] = (int8_t)between(-13, -6);
        if (mode & 4) {
            switch (between(0, 9)) {
            case 0: shift[i] = (int8_t)between(-31, 0); break;
            case 1: shift[i] = (int8_t)between(0, 3); break;
            case 2: bias[i] = (int32_t)(next() << 8); break;
            case 3: multiplier[i] = 0; break;
            case 4: shift[i] = -1; break;
            case 5: shift[i] = -31; break;
            default: break;
            }
        }
    }
    memset(output, 0x55, sizeof output);
    memset(scratch, 0x33, sizeof scratch);
    if (mode & 2) {
        nn_conv_dw_s8(&p, input, weights, bias, multiplier, shift, (mode & 16) ? NULL : (int8_t *)scratch, out);
    } else {
        nn_conv_s8(&p, input, weights, bias, multiplier, shift, (int16_t *)scratch, out);
    }
    dump(out, g->batch * g->out_channels * g->out_h * g->out_w);
}

/* requant_dsp.h against requant.h wherever nn_requant_dsp_fits(): the count of differences */
static void requant(void)
{
    int32_t i, wrong = 0, checked = 0;
    seed = 12345u;
    for (i = 0; i < 200000; ++i) {
        const int32_t shift = between(-31, 2), offset = between(-128, 127), m0 = between(1 << 30, 0x7FFFFFFF);
        const int32_t bound = 1 << between(0, 29);
        const int32_t acc = i % 7 == 0 ? (i & 8 ? bound : -bound) : between(-bound, bound);
        if (nn_requant_dsp_fits(bound, shift, offset)) {
            const int32_t want = nn_requantize(acc, m0, shift) + offset;
            const int32_t got = nn_requant_dsp(acc, m0, -shift, nn_requant_dsp_c(shift, offset));
            wrong += got != want;
            checked += 1;
        }
    }
    printf("requant %ld %ld\n", (long)checked, (long)wrong);
}

static const int32_t cases[][17] = {
%CASES%
};

int main(void)
{
    int32_t i;
    requant();
    for (i = 0; i < (int32_t)(sizeof cases / sizeof cases[0]); ++i) {
        conv(i, cases[i]);
    }
    return 0;
}
"""


def driver() -> str:
    rows = ",\n".join("    {" + ", ".join(map(str, c)) + "}" for c in CASES)
    return DRIVER.replace("%CASES%", rows)


def headers() -> dict[str, str]:
    return {h.name: h.read_text() for h in sorted((RUNTIME_DIR / "include").glob("*.h"))}


def check_sizes():
    for case in CASES:
        c = dict(zip(FIELDS, case))
        oh, ow = out_size(case)
        assert c["batch"] * c["cin"] * c["ih"] * c["iw"] <= 20000 and c["batch"] * c["cout"] * oh * ow <= 20000
        assert c["cout"] * c["cin"] // c["groups"] * c["kh"] * c["kw"] <= 20000 and c["cout"] <= 512
        k = c["cin"] // c["groups"] * c["kh"] * c["kw"]
        assert 2 * 2 * k + c["cout"] * (k + 3) // 4 * 4 <= 20000  # the DSP kernel's scratch bytes


def host_outputs(tmp_path, sources: str) -> list[str]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    folder = tmp_path / sources.replace("/", "_")
    folder.mkdir()
    for name, text in headers().items():
        (folder / name).write_text(text)
    (folder / "driver.c").write_text(driver())
    kernels = [str(RUNTIME_DIR / sources / k) for k in KERNELS]
    proc = subprocess.run(["gcc", *STRICT, "-I", str(folder), "driver.c", *kernels, "-o", "driver"], cwd=folder,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return subprocess.run(["./driver"], cwd=folder, capture_output=True, text=True, check=True).stdout.splitlines()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[str]:
    check_sizes()
    return host_outputs(tmp_path_factory.mktemp("reference"), "src/conv")


def compare(got: list[str], want: list[str]):
    assert len(got) == len(want) == len(CASES) + 1
    assert got[0].split()[0] == "requant" and int(got[0].split()[1]) > 50000 and got[0].split()[2] == "0", got[0]
    wrong = [CASES[i] for i, (a, b) in enumerate(zip(got[1:], want[1:])) if a != b]
    assert not wrong, f"{len(wrong)} geometries differ ({', '.join(FIELDS)}), first {wrong[:3]}"


def test_optimized_kernels_in_c_equal_the_portable_ones(reference, tmp_path):
    compare(host_outputs(tmp_path, "opt/dsp"), reference)


@pytest.mark.parametrize("target", DSP_TARGETS)
def test_dsp_kernels_equal_the_portable_ones(reference, target, tmp_path):
    need(target)
    files = {**headers(), **{k: (RUNTIME_DIR / "opt" / "dsp" / k).read_text() for k in KERNELS}}
    image = cross.build_image(files, driver(), target, tmp_path)
    out = subprocess.run(cross.emulator_command(target, image), cwd=tmp_path, capture_output=True, text=True,
                         timeout=600, stdin=subprocess.DEVNULL, env={"PATH": os.environ["PATH"]})
    assert out.returncode == 0, f"{load_target(target)['run']['emulator']} failed: {out.stderr[:200]}"
    lines = [line for line in (out.stdout + "\n" + out.stderr).splitlines()
             if line.startswith("requant ") or (line and all(ch in "0123456789abcdef" for ch in line))]
    compare(lines, reference)
