//! Benchmarks of the CPU work the staging worker does per job, through the production functions.
//!
//!     cargo bench --workspace --bench worker
//!
//! docs/benchmarks.md ("Worker CPU work") explains each row and has the measured numbers.
//!
//! * Image work: `shared::staging::imaging::inspect_original` (every job checks its original before the paid
//!   model call), `reencode_as_jpeg` (every model output becomes a clean JPEG at the worker's quality
//!   90) and `simulated_staging` (the offline simulator), on inputs from `shared::staging::imaging::samples`
//!   generated once before any clock starts: 2 MP and 12 MP originals, and one at the 40 MP limit
//!   `ImageLimits::ORIGINAL` allows. The refusals (pixel flood, truncated JPEG, HTML) are
//!   timed too, to show that they are refused from the header, before any pixel buffer exists.
//! * Renditions: `renditions_of` (decode, resize to 1600 and 480 px, two JPEG encodes) on a
//!   photo-like 12 MP JPEG (the sample with camera-like noise, 2+ MB), and one job's image work
//!   (the original checked with its renditions, a 2048×1536 result re-encoded with its own).
//! * libvips, when it and its Python binding are installed (`scripts/bench` installs both): the
//!   same work on the same files, one thread, timed inside its own process by
//!   `benches/libvips_reference.py`; each such row is named "libvips: <our row>", and the report
//!   ends with our median over libvips' for each.
//! * Job set-up: `shared::staging::prompts::build_prompt` for all 40 room/style pairs, and the default
//!   model's `validate_config` (of its stored, seeded configuration) and `build_input`.
//! * Memory: during the image benchmarks a counting global allocator records the peak heap in use
//!   above the level at the benchmark's start: the memory one call needs (resident size is no
//!   measure of that, as the allocator keeps freed pages). Two rows check one SQS batch of five
//!   12 MP originals: two at a time, as the worker limits it, and all five at once, what that
//!   limit prevents. The process's peak RSS (VmHWM) ends the report.
//!
//! Timings are printed, never asserted on: they depend on the machine. Every result is checked
//! (dimensions, formats, the JPEG markers of each output, the kind of each refusal), because a
//! benchmark of failures would measure the wrong thing.
//!
//! Knob (environment): BENCH_ITERATIONS (iterations of each image benchmark, default 30; the
//! microsecond benchmarks run 100x as many, the batch rows a fifth).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use shared::clients::storage::ImageFormat;
use shared::models::{self, StagingInput};
use shared::staging::imaging::{self, ImageLimits, ImageProblem, Jpeg, samples};
use shared::staging::prompts;
use shared::staging::vocabulary::{RoomType, Style, Treatment};

/// The worker's JPEG quality for stored results (`WorkerConfig::jpeg_quality`'s default).
const WORKER_JPEG_QUALITY: u8 = 90;
/// The simulator scales to at most this long side (imaging's SIMULATION_MAX_SIDE).
const SIMULATION_MAX_SIDE: u32 = 2048;
/// The SQS event source's BatchSize: the messages one worker invocation handles at once.
const SQS_BATCH_SIZE: usize = 5;
/// The worker's limit on image decodes/encodes running at once per instance (`IMAGE_WORK` in
/// shared/src/staging/worker/run.rs).
const WORKER_IMAGE_JOBS_AT_ONCE: usize = 2;
/// A presigned GET URL of an original, as long as the real ones (signature and all).
const PRESIGNED_URL: &str = "https://s3.us-west-004.backblazeb2.com/realstaging-originals/originals/\
    8f14e45f-ceea-467f-a0e6-0a1b2c3d4e5f/3c59dc04-8f14-4e45-b1c2-d3e4f5a6b7c8.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256\
    &X-Amz-Credential=004a1b2c3d4e5f60000000001%2F20261125%2Fus-west-004%2Fs3%2Faws4_request\
    &X-Amz-Date=20261125T143200Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\
    &X-Amz-Signature=5d41402abc4b2a76b9719d911017c592e4da3f6b7d0c1e2f3a4b5c6d7e8f9a0b";

fn main() {
    let image_iterations = env_count("BENCH_ITERATIONS", 30);
    let micro_iterations = image_iterations * 100;
    let batch_iterations = (image_iterations / SQS_BATCH_SIZE).max(2);
    // Taken before we add our own load: other work on the machine skews every number.
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    match run(image_iterations, micro_iterations, batch_iterations) {
        Ok((results, generation)) => print_report(
            &results,
            &generation,
            Counts {
                image: image_iterations,
                micro: micro_iterations,
                batch: batch_iterations,
            },
            &load_before,
        ),
        Err(message) => {
            eprintln!("benchmark failed: {message}");
            std::process::exit(1);
        }
    }
}

/// A `samples` function drawing the sample room at a width and height in one format.
type SampleEncoder = fn(u32, u32) -> Vec<u8>;

/// Whether an input was refused for the reason it should be.
type IsExpectedRefusal = fn(&ImageProblem) -> bool;

/// Inputs generated before timing.
struct Inputs {
    original_12mp: Vec<u8>,
    /// The 12 MP room with camera-like noise: a JPEG of realistic size (2+ MB), as phones write.
    photo_like_12mp: Vec<u8>,
    original_2mp: Vec<u8>,
    /// As large as `ImageLimits::ORIGINAL` lets an original be (40 MP).
    original_at_limit: Vec<u8>,
    truncated_12mp: Vec<u8>,
    pixel_flood: Vec<u8>,
    truncated: Vec<u8>,
    html: Vec<u8>,
    outputs: Vec<ModelOutput>,
}

/// A model's output as the worker downloads it.
struct ModelOutput {
    label: String,
    bytes: Vec<u8>,
    format: ImageFormat,
    width: u32,
    height: u32,
}

struct Generation {
    elapsed: Duration,
    /// Our medians over libvips' for the same work, when libvips ran.
    comparisons: Vec<Comparison>,
    /// The files of one photo-like original and its result, full size and as renditions.
    grid: Option<GridPhoto>,
}

/// Bytes of one grid entry: an original beside its staged result.
struct GridPhoto {
    original: usize,
    staged: usize,
    original_preview: usize,
    staged_preview: usize,
    original_web: usize,
    staged_web: usize,
}

/// The photos on one grid page the issue measured: a project of 50 listing photos.
const GRID_PHOTOS: usize = 50;

impl Inputs {
    /// The photo-like 2048×1536 JPEG among the model outputs: what a job's result is like.
    fn photo_like_output(&self) -> Result<&ModelOutput, String> {
        self.outputs
            .iter()
            .find(|o| o.label.starts_with("photo-like"))
            .ok_or_else(|| "no photo-like model output".to_string())
    }
}

fn generate_inputs() -> Inputs {
    let original_12mp = samples::room_jpeg(4032, 3024);
    // An interrupted upload of the same photo: the refusal must not cost a 12 MP decode.
    let truncated_12mp = original_12mp[..original_12mp.len() / 2].to_vec();
    let mut outputs = Vec::new();
    for (width, height) in [(1024, 1024), (2048, 1536)] {
        let encoders: [(&str, ImageFormat, SampleEncoder); 3] = [
            ("WebP (lossless)", ImageFormat::Webp, samples::room_webp),
            ("PNG", ImageFormat::Png, samples::room_png),
            ("JPEG", ImageFormat::Jpeg, samples::room_jpeg),
        ];
        for (name, format, encode) in encoders {
            outputs.push(ModelOutput {
                label: format!("{name} {width}×{height}"),
                bytes: encode(width, height),
                format,
                width,
                height,
            });
        }
    }
    // What a model returns is a photo too: detail and noise, not flat walls.
    outputs.push(ModelOutput {
        label: "photo-like JPEG 2048×1536".into(),
        bytes: photo_like(&samples::room_jpeg(2048, 1536)),
        format: ImageFormat::Jpeg,
        width: 2048,
        height: 1536,
    });
    Inputs {
        photo_like_12mp: photo_like(&original_12mp),
        original_12mp,
        // 2 MP at a phone's 4:3.
        original_2mp: samples::room_jpeg(1632, 1224),
        // 39.9 MP at 4:3, just under the 40 MP limit.
        original_at_limit: samples::room_jpeg(7296, 5472),
        truncated_12mp,
        pixel_flood: samples::pixel_flood_png(),
        truncated: samples::truncated_jpeg(),
        html: samples::html_named_jpeg(),
        outputs,
    }
}

/// The sample decoded, with deterministic noise of ±5 per channel (sensor noise and fine texture,
/// which a flat synthetic room lacks), re-encoded at quality 92: a 12 MP one is about as large as
/// a phone's JPEG.
fn photo_like(jpeg: &[u8]) -> Vec<u8> {
    let Ok(decoded) = image::load_from_memory(jpeg) else {
        return Vec::new();
    };
    let mut rgb = decoded.to_rgb8();
    let mut state: u32 = 0x9E37_79B9;
    for value in rgb.iter_mut() {
        // xorshift32: cheap, repeatable.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state % 11) as i16 - 5;
        *value = (i16::from(*value) + noise).clamp(0, 255) as u8;
    }
    let mut out = Vec::new();
    let encoded = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92).encode_image(&rgb);
    if encoded.is_err() {
        return Vec::new();
    }
    out
}

/// One piece of work for `benches/libvips_reference.py`: libvips doing what our row `ours` does,
/// on the same input files.
struct VipsTask<'a> {
    ours: String,
    /// The libvips row's name.
    name: String,
    /// A task the script knows: inspect_original, reencode_as_jpeg, renditions_of,
    /// thumbnail_renditions, job.
    task: &'static str,
    inputs: Vec<&'a [u8]>,
    megapixels: f64,
    quality: u8,
}

/// Our median beside libvips' for the same work on the same files.
struct Comparison {
    ours: String,
    libvips: String,
    ratio: f64,
}

/// The interpreter with pyvips: BENCH_PYTHON, else the repository's .venv (scripts/bench makes
/// it), else python3; `None` when none of them can import pyvips.
fn python_with_pyvips() -> Option<String> {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").to_string();
    let candidates = std::env::var("BENCH_PYTHON")
        .map(|python| vec![python])
        .unwrap_or_else(|_| vec![venv, "python3".into()]);
    candidates.into_iter().find(|python| {
        std::process::Command::new(python)
            .args(["-c", "import pyvips"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// Runs `tasks` in libvips (one thread, in one process, timed there: no process start in the
/// numbers) and returns a row for each, or `None` when libvips or pyvips is not installed.
fn libvips_reference(tasks: &[VipsTask<'_>], iterations: usize) -> Result<Option<Vec<Stats>>, String> {
    let Some(python) = python_with_pyvips() else {
        eprintln!("  (no libvips comparison: pyvips is not importable; scripts/bench installs libvips and pyvips)");
        return Ok(None);
    };
    let dir = std::env::temp_dir().join(format!("worker-bench-vips-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("libvips: {e}"))?;
    let mut spec = Vec::new();
    for (t, task) in tasks.iter().enumerate() {
        let mut paths = Vec::new();
        for (i, bytes) in task.inputs.iter().enumerate() {
            let path = dir.join(format!("{t}-{i}"));
            std::fs::write(&path, bytes).map_err(|e| format!("libvips: {e}"))?;
            paths.push(path.display().to_string());
        }
        spec.push(serde_json::json!({
            "name": task.ours, "task": task.task, "inputs": paths, "quality": task.quality,
        }));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/libvips_reference.py");
    let mut child = std::process::Command::new(&python)
        .arg(script)
        .arg(iterations.to_string())
        .arg(warmup_for(iterations).to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{python} {script}: {e}"))?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| std::io::Write::write_all(&mut stdin, Value::Array(spec).to_string().as_bytes()));
    let output = child.wait_with_output().map_err(|e| format!("libvips: {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(Err(e)) = written {
        return Err(format!("libvips: writing the tasks: {e}"));
    }
    if !output.status.success() {
        return Err(format!("libvips reference failed: {}", output.status));
    }
    let answered: Value = serde_json::from_slice(&output.stdout).map_err(|e| format!("libvips: {e}"))?;
    let rows = answered.as_array().ok_or("libvips: not a list")?;
    let mut stats = Vec::new();
    for (task, row) in tasks.iter().zip(rows) {
        let mut samples: Vec<Duration> = row["samples_ns"]
            .as_array()
            .ok_or("libvips: no samples")?
            .iter()
            .filter_map(Value::as_u64)
            .map(Duration::from_nanos)
            .collect();
        if samples.len() != iterations {
            return Err(format!("libvips: {} samples of {}", samples.len(), task.ours));
        }
        samples.sort_unstable();
        let largest = task.inputs.iter().map(|i| i.len()).max().unwrap_or(0);
        stats.push(Stats {
            name: task.name.clone(),
            work: Work::Image {
                input_bytes: largest,
                megapixels: Some(task.megapixels),
            },
            samples,
            peak_heap_bytes: None,
        });
    }
    Ok(Some(stats))
}

fn run(image_n: usize, micro_n: usize, batch_n: usize) -> Result<(Vec<Stats>, Generation), String> {
    let started = Instant::now();
    let inputs = generate_inputs();
    let mut generation = Generation {
        elapsed: started.elapsed(),
        comparisons: Vec::new(),
        grid: None,
    };
    for (name, bytes) in [
        ("12 MP original", &inputs.original_12mp),
        ("photo-like 12 MP original", &inputs.photo_like_12mp),
        ("2 MP original", &inputs.original_2mp),
        ("40 MP original", &inputs.original_at_limit),
    ] {
        if bytes.is_empty() {
            return Err(format!("the {name} sample could not be generated"));
        }
    }

    let original = ImageLimits::ORIGINAL;
    let output = ImageLimits::MODEL_OUTPUT;
    let mut results = Vec::new();
    // The same work for libvips, run after ours when it is installed.
    let mut vips_tasks: Vec<VipsTask<'_>> = Vec::new();

    // 1. Originals: what every job does before the paid call.
    for (label, bytes, (width, height)) in [
        ("12 MP JPEG 4032×3024", &inputs.original_12mp, (4032, 3024)),
        ("photo-like 12 MP JPEG 4032×3024", &inputs.photo_like_12mp, (4032, 3024)),
        ("2 MP JPEG 1632×1224", &inputs.original_2mp, (1632, 1224)),
        (
            "40 MP JPEG 7296×5472 (the limit)",
            &inputs.original_at_limit,
            (7296, 5472),
        ),
    ] {
        results.push(measure(
            &format!("inspect_original {label}"),
            Work::image(bytes, Some(megapixels(width, height))),
            warmup_for(image_n),
            image_n,
            || {
                let started = Instant::now();
                let checked = imaging::inspect_original(black_box(bytes), &original);
                let elapsed = started.elapsed();
                let checked = checked.map_err(|p| format!("inspect_original {label}: refused: {p}"))?;
                if (checked.format, checked.width, checked.height) != (ImageFormat::Jpeg, width, height) {
                    return Err(format!("inspect_original {label}: got {checked:?}"));
                }
                Ok(elapsed)
            },
        )?);
        vips_tasks.push(VipsTask {
            name: format!("libvips: decode {label}"),
            ours: format!("inspect_original {label}"),
            task: "inspect_original",
            inputs: vec![bytes],
            megapixels: megapixels(width, height),
            quality: 0,
        });
    }

    // 2. Refusals: each must be refused, for the right reason, without a decode.
    let refusals: [(&str, &[u8], IsExpectedRefusal); 4] = [
        ("pixel flood PNG (100 000×100 000)", &inputs.pixel_flood, |p| {
            matches!(p, ImageProblem::DimensionsTooLarge { width: 100_000, .. })
        }),
        ("truncated JPEG (320×240, half)", &inputs.truncated, |p| {
            matches!(
                p,
                ImageProblem::Truncated {
                    format: ImageFormat::Jpeg
                }
            )
        }),
        ("truncated 12 MP JPEG (half)", &inputs.truncated_12mp, |p| {
            matches!(
                p,
                ImageProblem::Truncated {
                    format: ImageFormat::Jpeg
                }
            )
        }),
        ("HTML named .jpg", &inputs.html, |p| {
            matches!(p, ImageProblem::NotAnImage { .. })
        }),
    ];
    for (label, bytes, expected) in refusals {
        let name = format!("inspect_original refuses {label}");
        results.push(measure(&name, Work::image(bytes, None), micro_n / 10, micro_n, || {
            let started = Instant::now();
            let checked = imaging::inspect_original(black_box(bytes), &original);
            let elapsed = started.elapsed();
            match checked {
                Err(problem) if expected(&problem) => Ok(elapsed),
                Err(problem) => Err(format!("{name}: refused for the wrong reason: {problem:?}")),
                Ok(checked) => Err(format!("{name}: accepted as {checked:?}")),
            }
        })?);
    }

    // 3. Model outputs → the stored JPEG.
    for ModelOutput {
        label,
        bytes,
        format,
        width,
        height,
    } in &inputs.outputs
    {
        let name = format!("reencode_as_jpeg {label} q{WORKER_JPEG_QUALITY}");
        // Once, untimed and thoroughly: the output is a JPEG that passes the original's checks.
        let jpeg = imaging::reencode_as_jpeg(bytes, &output, WORKER_JPEG_QUALITY)
            .map_err(|p| format!("{name}: refused: {p}"))?;
        check_jpeg(&name, &jpeg, *format, *width, *height)?;
        let reread = imaging::inspect_original(&jpeg.bytes, &original).map_err(|p| format!("{name}: output: {p}"))?;
        if (reread.format, reread.width, reread.height) != (ImageFormat::Jpeg, *width, *height) {
            return Err(format!("{name}: the output reads back as {reread:?}"));
        }
        results.push(measure(
            &name,
            Work::image(bytes, Some(megapixels(*width, *height))),
            warmup_for(image_n),
            image_n,
            || {
                let started = Instant::now();
                let jpeg = imaging::reencode_as_jpeg(black_box(bytes), &output, WORKER_JPEG_QUALITY);
                let elapsed = started.elapsed();
                let jpeg = jpeg.map_err(|p| format!("{name}: refused: {p}"))?;
                check_jpeg(&name, &jpeg, *format, *width, *height)?;
                Ok(elapsed)
            },
        )?);
        vips_tasks.push(VipsTask {
            name: format!("libvips: re-encode {label} q{WORKER_JPEG_QUALITY}"),
            ours: name,
            task: "reencode_as_jpeg",
            inputs: vec![bytes],
            megapixels: megapixels(*width, *height),
            quality: WORKER_JPEG_QUALITY,
        });
    }

    // 4. The offline simulator on a 12 MP original (scaled to 2048 px on the long side).
    {
        let name = "simulated_staging 12 MP JPEG 4032×3024";
        let (width, height) = (SIMULATION_MAX_SIDE, SIMULATION_MAX_SIDE * 3024 / 4032);
        let pairs: Vec<(RoomType, Style)> = all_pairs();
        let mut next = 0;
        results.push(measure(
            name,
            Work::image(&inputs.original_12mp, Some(megapixels(4032, 3024))),
            warmup_for(image_n),
            image_n,
            || {
                let (room, style) = pairs[next % pairs.len()];
                next += 1;
                let started = Instant::now();
                let staged = imaging::simulated_staging(
                    black_box(&inputs.original_12mp),
                    room,
                    Treatment::Stage(style),
                    None,
                    &original,
                );
                let elapsed = started.elapsed();
                let staged = staged.map_err(|p| format!("{name}: refused: {p}"))?;
                check_jpeg(name, &staged, ImageFormat::Jpeg, width, height)?;
                Ok(elapsed)
            },
        )?);
    }

    // 4b. Renditions (preview 480 px, web 1600 px) of a photo-like 12 MP JPEG: what every job adds
    //     to its check of the original, and the same again for its result.
    {
        let photo = &inputs.photo_like_12mp;
        let name = format!("renditions_of photo-like 12 MP JPEG ({} KB)", photo.len() / 1000);
        let check = |renditions: &imaging::Renditions| -> Result<(), String> {
            let sizes = [
                (renditions.web.width, renditions.web.height),
                (renditions.preview.width, renditions.preview.height),
            ];
            if sizes != [(1600, 1200), (480, 360)] {
                return Err(format!("{name}: renditions of {sizes:?}"));
            }
            Ok(())
        };
        results.push(measure(
            &name,
            Work::image(photo, Some(megapixels(4032, 3024))),
            warmup_for(image_n),
            image_n,
            || {
                let started = Instant::now();
                let renditions = imaging::renditions_of(black_box(photo), &original);
                let elapsed = started.elapsed();
                check(&renditions.map_err(|p| format!("{name}: refused: {p}"))?)?;
                Ok(elapsed)
            },
        )?);
        for task in ["renditions_of", "thumbnail_renditions"] {
            vips_tasks.push(VipsTask {
                name: match task {
                    "renditions_of" => "libvips: decode, resize to 1600 and 480, encode both (same file)".into(),
                    _ => "libvips: thumbnail 1600 and 480, shrink-on-load (same file)".into(),
                },
                ours: name.clone(),
                task,
                inputs: vec![photo],
                megapixels: megapixels(4032, 3024),
                quality: 0,
            });
        }
    }

    // 4c. One job's image work, as the worker does it: the original checked with its renditions,
    //     then the model's output (a 2048×1536 JPEG) re-encoded at q90 with its renditions.
    {
        let photo = &inputs.photo_like_12mp;
        let model_output = inputs.photo_like_output()?;
        let name = "one job: photo-like 12 MP original + photo-like 2048×1536 result, renditions of both";
        results.push(measure(
            name,
            Work::image(photo, Some(megapixels(4032, 3024) + megapixels(2048, 1536))),
            warmup_for(image_n),
            image_n,
            || {
                let started = Instant::now();
                let original_done = imaging::inspect_original_with_renditions(black_box(photo), &original);
                let output_done =
                    imaging::reencode_with_renditions(black_box(&model_output.bytes), &output, WORKER_JPEG_QUALITY);
                let elapsed = started.elapsed();
                let (checked, _) = original_done.map_err(|p| format!("{name}: original refused: {p}"))?;
                let (jpeg, renditions) = output_done.map_err(|p| format!("{name}: output refused: {p}"))?;
                check_jpeg(name, &jpeg, ImageFormat::Jpeg, 2048, 1536)?;
                if (checked.width, renditions.web.width, renditions.preview.width) != (4032, 1600, 480) {
                    return Err(format!("{name}: unexpected sizes"));
                }
                Ok(elapsed)
            },
        )?);
        vips_tasks.push(VipsTask {
            name: "libvips: the same job's image work (same files)".into(),
            ours: name.to_string(),
            task: "job",
            inputs: vec![photo, &model_output.bytes],
            megapixels: megapixels(4032, 3024) + megapixels(2048, 1536),
            quality: WORKER_JPEG_QUALITY,
        });
    }

    // 4c'. What a grid of photos downloads: the same original and result, untimed.
    {
        let output_bytes = &inputs.photo_like_output()?.bytes;
        let (_, original_renditions) = imaging::inspect_original_with_renditions(&inputs.photo_like_12mp, &original)
            .map_err(|p| format!("grid: original refused: {p}"))?;
        let (staged, staged_renditions) = imaging::reencode_with_renditions(output_bytes, &output, WORKER_JPEG_QUALITY)
            .map_err(|p| format!("grid: output refused: {p}"))?;
        generation.grid = Some(GridPhoto {
            original: inputs.photo_like_12mp.len(),
            staged: staged.bytes.len(),
            original_preview: original_renditions.preview.bytes.len(),
            staged_preview: staged_renditions.preview.bytes.len(),
            original_web: original_renditions.web.bytes.len(),
            staged_web: staged_renditions.web.bytes.len(),
        });
    }

    // 4d. libvips doing the same work on the same files, when it is installed.
    if let Some(vips_rows) = libvips_reference(&vips_tasks, image_n)? {
        for (task, theirs) in vips_tasks.iter().zip(vips_rows) {
            let ours = results
                .iter()
                .find(|r| r.name == task.ours)
                .ok_or_else(|| format!("no row named {}", task.ours))?;
            generation.comparisons.push(Comparison {
                ours: task.ours.clone(),
                libvips: task.task.to_string(),
                ratio: ours.percentile(50.0).as_secs_f64() / theirs.percentile(50.0).as_secs_f64().max(1e-9),
            });
            results.push(theirs);
        }
    }

    // 5. One SQS batch of five 12 MP originals, each message's check on the blocking pool: through
    // the worker's limit of two image jobs at once per instance, and without it (what the limit
    // prevents). The time is the wall clock for all five; the memory is what one instance needs.
    for at_once in [WORKER_IMAGE_JOBS_AT_ONCE, SQS_BATCH_SIZE] {
        let name = if at_once == SQS_BATCH_SIZE {
            format!("inspect_original 12 MP JPEG ×{SQS_BATCH_SIZE}, all at once")
        } else {
            format!("inspect_original 12 MP JPEG ×{SQS_BATCH_SIZE}, {at_once} at a time")
        };
        results.push(measure(
            &name,
            Work::image(
                &inputs.original_12mp,
                Some(megapixels(4032, 3024) * SQS_BATCH_SIZE as f64),
            ),
            1,
            batch_n,
            || {
                let started = Instant::now();
                let checked = inspect_batch(&inputs.original_12mp, &original, at_once);
                let elapsed = started.elapsed();
                if checked.len() != SQS_BATCH_SIZE {
                    return Err(format!("{name}: {} results", checked.len()));
                }
                for result in checked {
                    match result {
                        Some(Ok(c)) if (c.width, c.height) == (4032, 3024) => {}
                        other => return Err(format!("{name}: {other:?}")),
                    }
                }
                Ok(elapsed)
            },
        )?);
    }

    // 6. Job set-up: the prompt, the model's stored configuration, Replicate's input.
    let pairs = all_pairs();
    let library: Vec<String> = pairs
        .iter()
        .map(|&(r, s)| prompts::library_prompt(r, Treatment::Stage(s)))
        .collect();
    let mut distinct = library.clone();
    distinct.sort();
    distinct.dedup();
    if pairs.len() != 40 || distinct.len() != 40 {
        return Err(format!(
            "expected 40 distinct library prompts, got {} of {} pairs",
            distinct.len(),
            pairs.len()
        ));
    }
    {
        let mut next = 0;
        results.push(measure(
            "build_prompt (each of the 40 room/style pairs)",
            Work::Micro,
            micro_n / 10,
            micro_n * 4,
            || {
                let index = next % pairs.len();
                next += 1;
                let (room, style) = pairs[index];
                let started = Instant::now();
                let prompt = prompts::build_prompt(black_box(room), black_box(Treatment::Stage(style)), None);
                let elapsed = started.elapsed();
                if prompt != library[index] {
                    return Err(format!("build_prompt({room}, {style}) is not the library prompt"));
                }
                Ok(elapsed)
            },
        )?);
    }

    let spec = models::default_model();
    if spec.id != models::DEFAULT_MODEL_ID {
        return Err(format!(
            "default_model() is {}, not {}",
            spec.id,
            models::DEFAULT_MODEL_ID
        ));
    }
    // What the settings table holds for it: the seeded defaults (plus secrets, which it has none of
    // or which are unset).
    let stored = spec.default_config().as_json_with_secrets();
    let expected_config = spec.default_config();
    results.push(measure(
        &format!("validate_config ({})", spec.id),
        Work::Micro,
        micro_n / 10,
        micro_n,
        || {
            let started = Instant::now();
            let config = spec.validate_config(black_box(&stored));
            let elapsed = started.elapsed();
            match config {
                Ok(config) if config == expected_config => Ok(elapsed),
                Ok(config) => Err(format!("validate_config changed the stored defaults: {config:?}")),
                Err(errors) => Err(format!("validate_config refused the seeded defaults: {errors:?}")),
            }
        },
    )?);

    let prompt = prompts::build_prompt(RoomType::LivingRoom, Treatment::Stage(Style::Scandinavian), None);
    let input = StagingInput {
        image_url: PRESIGNED_URL,
        prompt: &prompt,
        seed: Some(424_242),
    };
    results.push(measure(
        &format!("build_input ({})", spec.id),
        Work::Micro,
        micro_n / 10,
        micro_n,
        || {
            let started = Instant::now();
            let built = spec.build_input(black_box(&expected_config), black_box(&input));
            let elapsed = started.elapsed();
            let built = built.map_err(|e| format!("build_input: {e}"))?;
            let carries_url = |value: &Value| {
                value.as_str() == Some(PRESIGNED_URL)
                    || value.as_array().and_then(|a| a.first()).and_then(Value::as_str) == Some(PRESIGNED_URL)
            };
            let ok = built["prompt"].as_str() == Some(prompt.as_str())
                && built.as_object().is_some_and(|body| body.values().any(carries_url));
            if !ok {
                return Err(format!("build_input: unexpected input {built}"));
            }
            Ok(elapsed)
        },
    )?);

    Ok((results, generation))
}

/// `SQS_BATCH_SIZE` checks of `original` on `at_once` threads, each taking the next job when it
/// is done, as the worker's semaphore-guarded blocking pool does. None for a check that panicked.
fn inspect_batch(
    original: &[u8],
    limits: &ImageLimits,
    at_once: usize,
) -> Vec<Option<Result<imaging::CheckedImage, ImageProblem>>> {
    let next_job = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..at_once)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    while next_job.fetch_add(1, Ordering::Relaxed) < SQS_BATCH_SIZE {
                        done.push(imaging::inspect_original(original, limits));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| match worker.join() {
                Ok(done) => done.into_iter().map(Some).collect(),
                Err(_) => vec![None],
            })
            .collect()
    })
}

fn all_pairs() -> Vec<(RoomType, Style)> {
    RoomType::ALL
        .iter()
        .flat_map(|&room| Style::ALL.iter().map(move |&style| (room, style)))
        .collect()
}

/// A re-encoded or simulated result: a complete baseline JPEG of the expected size.
fn check_jpeg(name: &str, jpeg: &Jpeg, source: ImageFormat, width: u32, height: u32) -> Result<(), String> {
    let bytes = &jpeg.bytes;
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) || !bytes.ends_with(&[0xFF, 0xD9]) {
        return Err(format!("{name}: the output is not a complete JPEG"));
    }
    if (jpeg.width, jpeg.height, jpeg.source_format) != (width, height, source) {
        return Err(format!(
            "{name}: expected a {width}×{height} JPEG from {source:?}, got {jpeg:?}"
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Measuring and reporting
// ------------------------------------------------------------------------------------------------

/// What a benchmark works on, for the columns that only image work has.
#[derive(Clone, Copy)]
enum Work {
    /// Image work: the input's size, the megapixels one sample processes, and the heap is tracked.
    Image {
        input_bytes: usize,
        megapixels: Option<f64>,
    },
    /// Microseconds of work on small values: no heap tracking (its counters would be a noticeable
    /// part of the time).
    Micro,
}

impl Work {
    fn image(input: &[u8], megapixels: Option<f64>) -> Self {
        Work::Image {
            input_bytes: input.len(),
            megapixels,
        }
    }
}

struct Stats {
    name: String,
    work: Work,
    samples: Vec<Duration>,
    /// The most heap in use at once during the benchmark, above the level at its start.
    peak_heap_bytes: Option<usize>,
}

impl Stats {
    /// Nearest-rank percentile: a value that was actually observed.
    fn percentile(&self, p: f64) -> Duration {
        let rank = ((p / 100.0) * self.samples.len() as f64).ceil() as usize;
        self.samples[rank.clamp(1, self.samples.len()) - 1]
    }
    fn max(&self) -> Duration {
        self.samples.last().copied().unwrap_or_default()
    }
}

/// Runs `op` `warmup` times untimed, then `iterations` times. `op` returns its own duration so
/// checking the result stays outside the measurement, and an error ends the benchmark.
fn measure<F>(name: &str, work: Work, warmup: usize, iterations: usize, mut op: F) -> Result<Stats, String>
where
    F: FnMut() -> Result<Duration, String>,
{
    let track_heap = matches!(work, Work::Image { .. });
    if track_heap {
        heap::start();
    }
    let mut run = || -> Result<Vec<Duration>, String> {
        for _ in 0..warmup {
            op()?;
        }
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            samples.push(op()?);
        }
        Ok(samples)
    };
    let samples = run();
    let peak_heap_bytes = track_heap.then(heap::stop);
    let mut samples = samples?;
    samples.sort_unstable();
    eprintln!("  done: {name}");
    Ok(Stats {
        name: name.to_string(),
        work,
        samples,
        peak_heap_bytes,
    })
}

/// Image work: a couple of untimed runs first (page faults of the first big buffers, caches).
fn warmup_for(iterations: usize) -> usize {
    (iterations / 10).max(2)
}

fn megapixels(width: u32, height: u32) -> f64 {
    f64::from(width) * f64::from(height) / 1e6
}

/// A `kB` line of /proc/self/status, e.g. VmHWM (peak resident size) or VmRSS.
fn read_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
}

#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

/// The system allocator, counting the bytes in use while a benchmark asks it to. The count is the
/// net change since [`heap::start`], so frees of older allocations can take it below zero; its
/// peak is what the benchmarked code needed on top of what existed before.
mod heap {
    use super::*;

    static TRACKING: AtomicBool = AtomicBool::new(false);
    static NET: AtomicIsize = AtomicIsize::new(0);
    static PEAK: AtomicIsize = AtomicIsize::new(0);

    pub fn start() {
        NET.store(0, Ordering::SeqCst);
        PEAK.store(0, Ordering::SeqCst);
        TRACKING.store(true, Ordering::SeqCst);
    }

    /// Stops counting; the peak in bytes.
    pub fn stop() -> usize {
        TRACKING.store(false, Ordering::SeqCst);
        usize::try_from(PEAK.load(Ordering::SeqCst)).unwrap_or(0)
    }

    fn grew(bytes: usize) {
        if TRACKING.load(Ordering::Relaxed) {
            let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
            let now = NET.fetch_add(bytes, Ordering::Relaxed).saturating_add(bytes);
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn shrank(bytes: usize) {
        if TRACKING.load(Ordering::Relaxed) {
            NET.fetch_sub(isize::try_from(bytes).unwrap_or(isize::MAX), Ordering::Relaxed);
        }
    }

    pub struct Counting;

    // SAFETY: every call is forwarded unchanged to the system allocator; the counting around it
    // neither allocates nor touches the memory.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            let ptr = unsafe { System.alloc(layout) };
            if !ptr.is_null() {
                grew(layout.size());
            }
            ptr
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            let ptr = unsafe { System.alloc_zeroed(layout) };
            if !ptr.is_null() {
                grew(layout.size());
            }
            ptr
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) };
            shrank(layout.size());
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            let new = unsafe { System.realloc(ptr, layout, new_size) };
            if !new.is_null() {
                // Counted as a new block before the old one is gone: a moving realloc briefly
                // holds both, as the peak should show.
                grew(new_size);
                shrank(layout.size());
            }
            new
        }
    }
}

struct Counts {
    image: usize,
    micro: usize,
    batch: usize,
}

fn print_report(results: &[Stats], generation: &Generation, counts: Counts, load_before: &str) {
    let profile = if cfg!(debug_assertions) {
        "debug (unoptimised!)"
    } else {
        "optimised (bench/release profile)"
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "realstaging worker CPU benchmarks, {}",
        shared::chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "build: {profile}; {cores} CPU cores; {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!(
        "iterations: {} per image benchmark, {} per refusal and set-up benchmark (build_prompt: {}), {} per batch of {SQS_BATCH_SIZE}",
        counts.image,
        counts.micro,
        counts.micro * 4,
        counts.batch
    );
    let load: Vec<&str> = load_before.split_whitespace().take(3).collect();
    if !load.is_empty() {
        println!("load average (1, 5, 15 min) before the run: {}", load.join(" "));
    }
    println!(
        "inputs generated in {:.1} s (not timed)",
        generation.elapsed.as_secs_f64()
    );
    println!();
    let width = results
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(10)
        .max(9);
    println!(
        "{:<width$} {:>6} {:>10} {:>10} {:>10} {:>10} {:>8} {:>10}",
        "benchmark", "n", "input", "p50", "p90", "max", "MP/s", "heap MiB"
    );
    println!("{}", "-".repeat(width + 7 + 4 * 11 + 9 + 11));
    for r in results {
        let (input, throughput) = match r.work {
            Work::Image {
                input_bytes,
                megapixels,
            } => (
                human_bytes(input_bytes),
                megapixels.map_or_else(
                    || "-".into(),
                    |mp| format!("{:.1}", mp / r.percentile(50.0).as_secs_f64()),
                ),
            ),
            Work::Micro => ("-".into(), "-".into()),
        };
        println!(
            "{:<width$} {:>6} {:>10} {:>10} {:>10} {:>10} {:>8} {:>10}",
            r.name,
            r.samples.len(),
            input,
            human_duration(r.percentile(50.0)),
            human_duration(r.percentile(90.0)),
            human_duration(r.max()),
            throughput,
            r.peak_heap_bytes.map_or_else(
                || "-".into(),
                |bytes| format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
            ),
        );
    }
    println!();
    println!("MP/s: megapixels of the input over the p50 (batch rows: all five images over the wall-clock time).");
    println!("heap MiB: the most heap in use at once during the benchmark, above what was in use before it.");
    if let Some(g) = &generation.grid {
        let mb = |bytes: usize| bytes as f64 / 1e6;
        println!();
        println!(
            "a grid of {GRID_PHOTOS} photos, each photo-like 12 MP original beside its photo-like 2048×1536 result:"
        );
        println!(
            "  full-size files: {GRID_PHOTOS} × ({:.0} KB + {:.0} KB) = {:.1} MB",
            g.original as f64 / 1e3,
            g.staged as f64 / 1e3,
            mb(GRID_PHOTOS * (g.original + g.staged))
        );
        println!(
            "  previews:        {GRID_PHOTOS} × ({:.1} KB + {:.1} KB) = {:.2} MB",
            g.original_preview as f64 / 1e3,
            g.staged_preview as f64 / 1e3,
            mb(GRID_PHOTOS * (g.original_preview + g.staged_preview))
        );
        println!(
            "  (web sizes, for listing sites: {:.0} KB and {:.0} KB)",
            g.original_web as f64 / 1e3,
            g.staged_web as f64 / 1e3
        );
    }
    if !generation.comparisons.is_empty() {
        println!();
        println!("ours / libvips, medians, same files, one thread each (below 1: we are faster):");
        let width = generation
            .comparisons
            .iter()
            .map(|c| c.ours.chars().count())
            .max()
            .unwrap_or(10);
        for c in &generation.comparisons {
            println!("  {:<width$}  vs libvips {:<21} {:>6.2}x", c.ours, c.libvips, c.ratio);
        }
        println!("  (libvips thumbnail_renditions shrinks while decoding: less work than a full decode)");
    }
    match read_status_kib("VmHWM") {
        Some(peak) => println!(
            "peak RSS of the process (VmHWM), inputs included: {:.1} MiB",
            peak as f64 / 1024.0
        ),
        None => println!("peak RSS: /proc/self/status is not readable here"),
    }
    println!();
}

fn human_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos < 1_000 {
        format!("{nanos} ns")
    } else if nanos < 1_000_000 {
        format!("{:.1} µs", nanos as f64 / 1e3)
    } else {
        format!("{:.1} ms", nanos as f64 / 1e6)
    }
}

fn human_bytes(bytes: usize) -> String {
    if bytes < 10 * 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}
