//! The reload plan on a synthetic 10,000-module, 100,000-edge project
//! (`debug_reload_core::synthetic`): building the graph from the manifest,
//! and planning (before the compile, definite and conditional parts) for a
//! one-file change. Prints the build's peak heap and the process's peak RSS.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use debug_reload_core::graph::ReloadGraph;
use debug_reload_core::plan::{self, PlanRequest};
use debug_reload_core::synthetic;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

const MODULES: usize = 10_000;
const EDGES: usize = 100_000;
const SEED: u64 = 42;

/// Counts live heap bytes and their peak, to measure a build's footprint.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Ordinary (non-macro) modules' files, spread over the project.
fn ordinary_files(count: usize) -> Vec<String> {
    let pool = synthetic::macros(MODULES);
    (0..count)
        .map(|i| synthetic::path_of(pool + (i * 7_919) % (MODULES - pool)))
        .collect()
}

fn request(path: String) -> PlanRequest {
    PlanRequest {
        changed: vec![path],
        ..PlanRequest::default()
    }
}

fn benches(c: &mut Criterion) {
    let manifest = synthetic::manifest(MODULES, EDGES, SEED);

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let graph = ReloadGraph::build(&manifest);
    let build_peak = PEAK.load(Ordering::Relaxed) - before;
    let retained = LIVE.load(Ordering::Relaxed) - before;
    let stats = graph.stats();
    eprintln!(
        "graph: {} files, {} modules, {} edges; build peak heap {:.1} MiB, retained {:.1} MiB; process peak RSS {} MiB",
        stats.files,
        stats.modules,
        stats.edges,
        build_peak as f64 / 1048576.0,
        retained as f64 / 1048576.0,
        vm_hwm_kib().map_or("?".to_string(), |k| (k / 1024).to_string()),
    );

    let files = ordinary_files(64);
    let sizes: Vec<usize> = files
        .iter()
        .map(|f| plan::plan(&graph, &request(f.clone()), None).files.len())
        .collect();
    eprintln!(
        "one-file plans: {} to {} files recompiled (definite + conditional)",
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap()
    );
    let macro_plan = plan::plan(&graph, &request(synthetic::path_of(3)), None);
    eprintln!("macro-module plan: {} files", macro_plan.files.len());

    let mut group = c.benchmark_group("reload_plan");
    group.sample_size(20);
    group.bench_function("build 10k modules / 100k edges", |b| {
        b.iter(|| ReloadGraph::build(black_box(&manifest)))
    });
    group.finish();

    let mut group = c.benchmark_group("reload_plan");
    let mut next = 0;
    group.bench_function("plan one-file change", |b| {
        b.iter(|| {
            next = (next + 1) % files.len();
            plan::plan(&graph, black_box(&request(files[next].clone())), None)
        })
    });
    group.bench_function("plan macro-module change", |b| {
        b.iter(|| plan::plan(&graph, black_box(&request(synthetic::path_of(3))), None))
    });
    group.finish();
}

criterion_group!(graph_benches, benches);
criterion_main!(graph_benches);
