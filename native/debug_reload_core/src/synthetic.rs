//! A synthetic manifest for benchmarks: one generator, so the criterion
//! bench, the NIF and the Elixir `:digraph` comparison plan over exactly
//! the same graph.
//!
//! The shape follows real projects: a small pool of macro/DSL modules
//! used at compile time (which only call each other), and application
//! modules grouped in contexts of 100 that mostly call and import within
//! their context. Of the reference edges, 8% are compile-time (to the
//! macro pool), 15% export and 77% runtime. One file in 25 defines two
//! modules. Deterministic for a given seed.

use crate::manifest::{App, Manifest, Module, Source, SourceKind};

pub const ROOT: &str = "/synthetic";
const CONTEXT: usize = 100;

/// Modules `0..macros(modules)` form the macro pool.
pub fn macros(modules: usize) -> usize {
    (modules / 50).max(1)
}

pub fn module_name(i: usize) -> String {
    format!("Elixir.App.M{i}")
}

/// The path of the file defining module `i`.
pub fn path_of(i: usize) -> String {
    let file = if i % 25 == 24 { i - 1 } else { i };
    format!("{ROOT}/lib/m{file}.ex")
}

pub fn manifest(modules: usize, edges: usize, seed: u64) -> Manifest {
    let mut rng = SplitMix(seed);
    let pool = macros(modules);
    let mut sources: Vec<Source> = Vec::with_capacity(modules);
    for i in 0..modules {
        if i % 25 == 24 && i > 0 {
            // Shares the previous module's file.
            sources.last_mut().unwrap().modules.push(module_name(i));
            continue;
        }
        let mut source = Source::new(&path_of(i), "app", SourceKind::Elixir);
        source.modules.push(module_name(i));
        sources.push(source);
    }

    let files = sources.len();
    let mut placed = 0;
    while placed < edges {
        let file = rng.below(files);
        let own = module_index(&sources[file].modules[0]);
        let shared = sources[file].modules.get(1).cloned();
        let roll = rng.below(100);
        let (list, target) = if own < pool {
            // Macro modules only call lower macro modules (or Elixir).
            let target = match own {
                0 => format!("Elixir.Std{}", rng.below(8)),
                _ => module_name(rng.below(own)),
            };
            (&mut sources[file].runtime, target)
        } else if roll < 8 {
            (&mut sources[file].compile, module_name(rng.below(pool)))
        } else {
            let target = if rng.below(10) < 7 {
                let base = own / CONTEXT * CONTEXT;
                (base + rng.below(CONTEXT)).clamp(pool, modules - 1)
            } else {
                pool + rng.below(modules - pool)
            };
            let list = if roll < 23 {
                &mut sources[file].export
            } else {
                &mut sources[file].runtime
            };
            (list, module_name(target))
        };
        // Mix records each reference once per file.
        if !list.contains(&target) && target != module_name(own) && Some(&target) != shared.as_ref()
        {
            list.push(target);
            placed += 1;
        }
    }

    let modules = (0..modules)
        .map(|i| Module {
            name: module_name(i),
            app: "app".to_string(),
            export: Some(format!("{:032x}", rng.next())),
            recompile: false,
        })
        .collect();
    Manifest {
        root: ROOT.to_string(),
        apps: vec![App {
            name: "app".to_string(),
            root: ROOT.to_string(),
            source_dirs: vec![format!("{ROOT}/lib")],
            deps: Vec::new(),
        }],
        sources,
        modules,
    }
}

fn module_index(name: &str) -> usize {
    name.trim_start_matches("Elixir.App.M").parse().unwrap_or(0)
}

/// SplitMix64: small, fast, and good enough for workloads.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_the_requested_size_and_is_deterministic() {
        let m = manifest(1_000, 10_000, 7);
        assert_eq!(m.modules.len(), 1_000);
        assert_eq!(
            m.sources.iter().map(|s| s.modules.len()).sum::<usize>(),
            1_000
        );
        let refs: usize = m
            .sources
            .iter()
            .map(|s| s.compile.len() + s.export.len() + s.runtime.len())
            .sum();
        assert_eq!(refs, 10_000);
        assert_eq!(m, manifest(1_000, 10_000, 7));
        assert_eq!(path_of(24), path_of(23));
    }
}
