"""libvips doing the worker's image work on the same files, for `cargo bench --bench worker`.

The worker benchmark runs this when libvips and its Python binding are installed
(`scripts/bench` installs both: Debian's libvips, PyPI's pyvips) and prints our time over
libvips' beside each row. It times inside one process, one libvips thread (VIPS_CONCURRENCY=1,
set before the library loads), with libvips' operation cache off, so each iteration does the
whole work again, as the worker does for each job.

    python3 benches/libvips_reference.py ITERATIONS WARMUP < tasks.json > samples.json

tasks.json is a list of {"name": str, "task": str, "inputs": [path, ...], "quality": int};
samples.json is a list of {"name": str, "samples_ns": [int, ...]}. Tasks (the same work as the
worker's functions of the same name, the way libvips does it best):

* inspect_original: decode the whole file into memory, failing on any error.
* reencode_as_jpeg: decode (streamed), flatten alpha onto white, write a JPEG at `quality`
  without metadata, 4:2:0 chroma and the standard Huffman tables, as the worker writes results.
* renditions_of: decode the whole file into memory, resize with Lanczos3 to 1600 px on the long
  side, write it at Q85, resize that to 480 px, write it at Q78; renditions, like the worker's,
  with optimised Huffman tables.
* thumbnail_renditions: the same two files by libvips' thumbnail, which shrinks while it
  decodes (JPEG DCT scaling): less work than a full decode, so not the same work; shown as the
  best libvips can do, not as the comparison.
* job: what one job's images cost: renditions_of the original (inputs[0]), then the model output
  (inputs[1]) decoded into memory, written at `quality` and its renditions made.
"""

import json
import os
import sys
import time

os.environ["VIPS_CONCURRENCY"] = "1"
import pyvips  # noqa: E402  (after VIPS_CONCURRENCY, which libvips reads when it loads)

WEB, WEB_Q = 1600, 85
PREVIEW, PREVIEW_Q = 480, 78


def save_jpeg(image, quality, optimize_coding=False):
    return image.jpegsave_buffer(Q=quality, strip=True, optimize_coding=optimize_coding, subsample_mode="on")


def as_rgb(image):
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return image


def decode_all(data):
    return as_rgb(pyvips.Image.new_from_buffer(data, "", fail=True)).copy_memory()


def fit(image, long_side):
    longest = max(image.width, image.height)
    if longest <= long_side:
        return image
    return image.resize(long_side / longest, kernel="lanczos3").copy_memory()


def renditions(image):
    web = fit(image, WEB)
    return save_jpeg(web, WEB_Q, True), save_jpeg(fit(web, PREVIEW), PREVIEW_Q, True)


def run(task, inputs, quality):
    if task == "inspect_original":
        decode_all(inputs[0])
    elif task == "reencode_as_jpeg":
        image = pyvips.Image.new_from_buffer(inputs[0], "", access="sequential", fail=True)
        save_jpeg(as_rgb(image), quality)
    elif task == "renditions_of":
        renditions(decode_all(inputs[0]))
    elif task == "thumbnail_renditions":
        web = pyvips.Image.thumbnail_buffer(inputs[0], WEB).copy_memory()
        save_jpeg(web, WEB_Q, True)
        save_jpeg(web.thumbnail_image(PREVIEW), PREVIEW_Q, True)
    elif task == "job":
        renditions(decode_all(inputs[0]))
        output = decode_all(inputs[1])
        save_jpeg(output, quality)
        renditions(output)
    else:
        raise SystemExit(f"unknown task {task!r}")


def main():
    iterations, warmup = int(sys.argv[1]), int(sys.argv[2])
    pyvips.cache_set_max(0)
    results = []
    for spec in json.load(sys.stdin):
        inputs = []
        for path in spec["inputs"]:
            with open(path, "rb") as f:
                inputs.append(f.read())
        quality = int(spec.get("quality", 90))
        for _ in range(warmup):
            run(spec["task"], inputs, quality)
        samples = []
        for _ in range(iterations):
            started = time.perf_counter_ns()
            run(spec["task"], inputs, quality)
            samples.append(time.perf_counter_ns() - started)
        print(f"  done: libvips {spec['name']}", file=sys.stderr)
        results.append({"name": spec["name"], "samples_ns": samples})
    json.dump(results, sys.stdout)
    print(f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}", file=sys.stderr)


if __name__ == "__main__":
    main()
